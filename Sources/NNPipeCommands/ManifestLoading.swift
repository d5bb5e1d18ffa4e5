import Foundation
import NNPipeCore

/// Shared by run and validate: decode, validate and preflight a manifest file.
enum ManifestLoading {
    static func load(_ path: String, toolkit: Toolkit) throws -> Manifest {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw NNPipeError(.usage, "manifest not found", path: path)
        }
        var decoder = ManifestDecoder(registry: toolkit.stages, pluginResolver: nil)
        return try decoder.decode(fileAt: url)
    }

    static func runner(toolkit: Toolkit, progress: ProgressReporter) -> PipelineRunner {
        PipelineRunner(registry: toolkit.stages, formats: toolkit.formats, progress: progress, evaluator: toolkit.evaluator)
    }
}
