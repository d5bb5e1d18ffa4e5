import Dispatch
import Foundation
@testable import NNPipeRuntime
import Testing

/// The worker pool under `parallelTasks` (WorkerPool.c): every task runs exactly once, worker
/// numbers stay below the workers asked for (kernels index per-worker scratch with them), and a
/// pool already busy (a task calling back in, or another thread's job) hands the work back
/// instead of blocking.
@Suite struct WorkerPoolTests {
    /// Counts of each task and the highest worker number seen, written under a lock.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var runs: [Int]
        private(set) var highestWorker = -1
        init(_ count: Int) { runs = Array(repeating: 0, count: count) }
        func record(worker: Int, task: Int) {
            lock.withLock {
                runs[task] += 1
                highestWorker = max(highestWorker, worker)
            }
        }
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let tasks: Int
        let workers: Int
        var testDescription: String { "\(tasks) tasks on \(workers) workers" }
    }

    @Test("every task runs once, on a worker below the count asked for", arguments: [
        Case(tasks: 2, workers: 2), Case(tasks: 3, workers: 2), Case(tasks: 64, workers: 2), Case(tasks: 1000, workers: 2),
        Case(tasks: 5, workers: 4), Case(tasks: 200, workers: 8), Case(tasks: 7, workers: 64),
    ])
    func tasksRunOnce(_ example: Case) {
        // Many jobs back to back: helpers are then caught both spinning and asleep.
        for round in 0..<200 {
            let tally = Tally(example.tasks)
            parallelTasks(example.tasks, threads: example.workers) { worker, task in
                tally.record(worker: worker, task: task)
                if round % 50 == 0 { usleep(50) }
            }
            #expect(tally.runs.allSatisfy { $0 == 1 }, "round \(round): \(tally.runs.filter { $0 != 1 }.count) tasks not run once")
            #expect(tally.highestWorker < min(example.workers, example.tasks), "round \(round): worker \(tally.highestWorker)")
        }
    }

    @Test("the pool hands back work it cannot take now")
    func busyPoolDeclines() {
        let outer = Tally(4)
        let inner = Tally(4 * 8)
        let accepted = Tally(4)
        // A task calling back in: the inner call runs another way (the pool is busy with the outer job).
        parallelTasks(4, threads: 2) { worker, task in
            outer.record(worker: worker, task: task)
            if WorkerPool.run(8, workers: 2, { _, _ in }) { accepted.record(worker: 0, task: task) }
            parallelTasks(8, threads: 2) { innerWorker, innerTask in inner.record(worker: innerWorker, task: task * 8 + innerTask) }
        }
        #expect(outer.runs.allSatisfy { $0 == 1 } && inner.runs.allSatisfy { $0 == 1 })
        #expect(accepted.runs == [0, 0, 0, 0], "a task's own call must not get the busy pool")
        #expect(!WorkerPool.run(1, workers: 2) { _, _ in }, "one task is the caller's own")
        #expect(!WorkerPool.run(5, workers: 1) { _, _ in }, "one worker is the caller itself")
    }

    @Test("several threads submitting at once each get all their tasks run")
    func concurrentCallers() {
        let callers = 4, tasks = 50
        let tallies = (0..<callers).map { _ in Tally(tasks) }
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            for _ in 0..<50 {
                let tally = Tally(tasks)
                parallelTasks(tasks, threads: 2) { worker, task in tally.record(worker: worker, task: task) }
                if tally.runs.allSatisfy({ $0 == 1 }) && tally.highestWorker < 2 {
                    tallies[caller].record(worker: 0, task: 0)
                }
            }
        }
        #expect(tallies.map { $0.runs[0] } == Array(repeating: 50, count: callers))
    }
}
