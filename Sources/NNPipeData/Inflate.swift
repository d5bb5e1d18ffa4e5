import NNPipeCore

/// A DEFLATE (RFC 1951) decoder, so compressed `.npz` members open without linking zlib.
///
/// Table-driven: each Huffman code becomes a lookup table indexed by the next (bit-reversed)
/// bits, so a symbol costs one load instead of a bit-at-a-time walk. Input is read in 64 KiB
/// chunks and output is handed on in ~1 MiB pieces behind the 32 KiB window, so memory stays
/// bounded whatever the member's size.
enum Inflate {
    /// Decompresses a raw DEFLATE stream (no zlib or gzip wrapper) held in memory.
    /// - Parameter expectedCount: the size the archive declares, used to reserve and to check.
    static func decompress(_ input: [UInt8], expectedCount: Int? = nil) throws -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(expectedCount ?? input.count * 3)
        let count = try decompress(from: MemoryByteSource(input, location: "deflate stream"), range: 0..<input.count) {
            output.append(contentsOf: $0)
        }
        if let expectedCount, count != expectedCount {
            throw failure("inflated to \(count) bytes, archive says \(expectedCount)")
        }
        return output
    }

    /// Decompresses `range` of `source`, handing the output to `sink` in pieces of about 1 MiB.
    /// Returns the number of bytes produced.
    @discardableResult
    static func decompress(
        from source: ByteSource, range: Range<Int>, sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> Int {
        let state = State(source: source, range: range)
        var isLast = false
        while !isLast {
            isLast = try state.bits(1) == 1
            switch try state.bits(2) {
            case 0: try state.storedBlock(sink)
            case 1: try state.codesBlock(lengths: Tables.fixedLengths, distances: Tables.fixedDistances, sink)
            case 2:
                let (lengths, distances) = try state.dynamicTables()
                try state.codesBlock(lengths: lengths, distances: distances, sink)
            default: throw failure("block type 3 is reserved")
            }
        }
        try state.flush(keepingWindow: false, sink)
        return state.flushedCount
    }

    static func failure(_ message: String) -> NNPipeError {
        NNPipeError(.invalidData, "corrupt deflate data: \(message)")
    }

    /// A canonical Huffman code as a lookup table: entry = symbol << 4 | code length (0 = no code).
    final class Huffman: @unchecked Sendable {
        let table: UnsafeMutablePointer<UInt16>
        /// Bits the table is indexed by: the longest code length.
        let indexBits: Int

        /// Builds the code from per-symbol bit lengths (0 = unused); rejects over-subscribed sets.
        /// Incomplete sets are allowed; their missing codes fail when met.
        init(lengths: [Int]) throws {
            var counts = [Int](repeating: 0, count: 16)
            for length in lengths { counts[length] += 1 }
            var left = 1
            for length in 1..<16 {
                left = (left << 1) - counts[length]
                if left < 0 { throw Inflate.failure("over-subscribed Huffman code") }
            }
            indexBits = max(1, lengths.max() ?? 1)
            let size = 1 << indexBits
            table = .allocate(capacity: size)
            table.initialize(repeating: 0, count: size)
            // Canonical codes: consecutive values per length, shorter lengths first (RFC 1951 3.2.2).
            var nextCode = [Int](repeating: 0, count: 16)
            var code = 0
            counts[0] = 0
            for length in 1..<16 {
                code = (code + counts[length - 1]) << 1
                nextCode[length] = code
            }
            for (symbol, length) in lengths.enumerated() where length != 0 {
                let value = nextCode[length]
                nextCode[length] += 1
                // The stream sends codes most significant bit first; the bit buffer is LSB first.
                var reversed = 0
                for bit in 0..<length where value & (1 << bit) != 0 { reversed |= 1 << (length - 1 - bit) }
                let entry = UInt16(symbol << 4 | length)
                var index = reversed
                while index < size {
                    table[index] = entry
                    index += 1 << length
                }
            }
        }

        deinit { table.deallocate() }
    }

    enum Tables {
        static let lengthBase: [Int] = [
            3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
            131, 163, 195, 227, 258,
        ]
        static let lengthExtra: [Int] = [
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
        ]
        static let distanceBase: [Int] = [
            1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
            2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
        ]
        static let distanceExtra: [Int] = [
            0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
            13, 13,
        ]
        /// Raw-pointer copies for the hot loop (no array bounds or lazy-global checks per symbol).
        nonisolated(unsafe) static let lengthBases = pointer(lengthBase)
        nonisolated(unsafe) static let lengthExtraBits = pointer(lengthExtra)
        nonisolated(unsafe) static let distanceBases = pointer(distanceBase)
        nonisolated(unsafe) static let distanceExtraBits = pointer(distanceExtra)

        private static func pointer(_ values: [Int]) -> UnsafePointer<Int> {
            let memory = UnsafeMutablePointer<Int>.allocate(capacity: values.count)  // lives for the process
            memory.initialize(from: values, count: values.count)
            return UnsafePointer(memory)
        }

        /// Order in which code-length code lengths are stored in a dynamic block header.
        static let codeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

        static let fixedLengths: Huffman = {
            var lengths = [Int](repeating: 8, count: 288)
            for symbol in 144..<256 { lengths[symbol] = 9 }
            for symbol in 256..<280 { lengths[symbol] = 7 }
            return try! Huffman(lengths: lengths)
        }()
        static let fixedDistances = try! Huffman(lengths: [Int](repeating: 5, count: 30))
    }

    /// Decoder state over raw buffers: debug builds run the hot loop at a usable speed.
    final class State {
        /// DEFLATE looks back at most 32 KiB; output before that can be handed on.
        static let windowSize = 32_768
        static let flushSize = 1 << 20
        static let chunkSize = 1 << 16
        /// Room for the window, one flush piece and the longest single copy.
        static let outputCapacity = windowSize + flushSize + 65_536

        let source: ByteSource
        var nextOffset: Int
        let endOffset: Int
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        var chunkCount = 0
        var position = 0
        var bitBuffer: UInt64 = 0
        var bitCount = 0
        /// Zero bits appended past the end of input so a table lookup can peek; consuming them is an error.
        var paddingBits = 0
        let output = UnsafeMutablePointer<UInt8>.allocate(capacity: outputCapacity)
        var outputCount = 0
        var flushedCount = 0

        init(source: ByteSource, range: Range<Int>) {
            self.source = source
            nextOffset = range.lowerBound
            endOffset = range.upperBound
        }

        deinit {
            chunk.deallocate()
            output.deallocate()
        }

        /// Tops the bit buffer up to at least 57 bits, padding with zeros past the end of input.
        func refill() throws {
            var buffer = bitBuffer
            var count = bitCount
            var index = position
            let bytes = chunk.baseAddress!.assumingMemoryBound(to: UInt8.self)
            while count <= 56 {
                if index == chunkCount {
                    if nextOffset < endOffset {
                        chunkCount = min(Self.chunkSize, endOffset - nextOffset)
                        try source.read(at: nextOffset, into: UnsafeMutableRawBufferPointer(rebasing: chunk[0..<chunkCount]))
                        nextOffset += chunkCount
                        index = 0
                    } else {
                        count += 8
                        paddingBits += 8
                        continue
                    }
                }
                buffer |= UInt64(bytes[index]) << UInt64(count)
                index += 1
                count += 8
            }
            bitBuffer = buffer
            bitCount = count
            position = index
        }

        @inline(__always) func consume(_ count: Int) throws {
            bitBuffer >>= UInt64(count)
            bitCount -= count
            if paddingBits > bitCount { throw Inflate.failure("input ended early") }
        }

        /// The next `count` (at most 32) bits, least significant first.
        @inline(__always) func bits(_ count: Int) throws -> Int {
            if bitCount < count { try refill() }
            let value = Int(bitBuffer & ((1 << UInt64(count)) - 1))
            try consume(count)
            return value
        }

        @inline(__always) func decode(_ code: Huffman) throws -> Int {
            if bitCount < code.indexBits { try refill() }
            let entry = Int(code.table[Int(bitBuffer & ((1 << UInt64(code.indexBits)) - 1))])
            let length = entry & 15
            guard length != 0 else { throw Inflate.failure("invalid Huffman code") }
            try consume(length)
            return entry >> 4
        }

        /// Hands output to the sink, keeping the last 32 KiB for back references unless done.
        func flush(keepingWindow: Bool, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
            let count = keepingWindow ? outputCount - Self.windowSize : outputCount
            guard count > 0 else { return }
            try sink(UnsafeRawBufferPointer(start: output, count: count))
            (output).update(from: output + count, count: outputCount - count)
            outputCount -= count
            flushedCount += count
        }

        func storedBlock(_ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
            try consume(bitCount % 8)  // to the byte boundary
            let length = try bits(16)
            let complement = try bits(16)
            guard length == ~complement & 0xFFFF else { throw Inflate.failure("stored block length check failed") }
            var remaining = length
            // Whole bytes already pulled into the bit buffer come first, then straight copies from the chunk.
            while remaining > 0 && bitCount - paddingBits >= 8 {
                if outputCount == Self.outputCapacity { try flush(keepingWindow: true, sink) }
                output[outputCount] = UInt8(truncatingIfNeeded: bitBuffer)
                outputCount += 1
                remaining -= 1
                try consume(8)
            }
            if bitCount - paddingBits < 8 {
                bitBuffer = 0
                bitCount = 0
                paddingBits = 0
            }
            while remaining > 0 {
                if position == chunkCount {
                    guard nextOffset < endOffset else { throw Inflate.failure("input ended early") }
                    chunkCount = min(Self.chunkSize, endOffset - nextOffset)
                    try source.read(at: nextOffset, into: UnsafeMutableRawBufferPointer(rebasing: chunk[0..<chunkCount]))
                    nextOffset += chunkCount
                    position = 0
                }
                if outputCount == Self.outputCapacity { try flush(keepingWindow: true, sink) }
                let count = min(remaining, chunkCount - position, Self.outputCapacity - outputCount)
                (output + outputCount).update(
                    from: chunk.baseAddress!.assumingMemoryBound(to: UInt8.self) + position, count: count)
                outputCount += count
                position += count
                remaining -= count
            }
            if outputCount >= Self.windowSize + Self.flushSize { try flush(keepingWindow: true, sink) }
        }

        /// The hot loop. State lives in locals while it runs: every access to a class property
        /// costs a dynamic exclusivity check, which made this loop several times slower.
        func codesBlock(lengths: Huffman, distances: Huffman, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
            let lengthTable = lengths.table
            let lengthMask = (UInt64(1) << UInt64(lengths.indexBits)) - 1
            let distanceTable = distances.table
            let distanceMask = (UInt64(1) << UInt64(distances.indexBits)) - 1
            let output = self.output
            let flushLimit = Self.windowSize + Self.flushSize
            // Plain locals, not captured by any closure: captured variables are boxed and checked too.
            var buffer = bitBuffer
            var count = bitCount
            var produced = outputCount
            var padding = paddingBits
            while true {
                if produced >= flushLimit {
                    outputCount = produced
                    try flush(keepingWindow: true, sink)
                    produced = outputCount
                }
                // One symbol needs at most 15 + 5 + 15 + 13 = 48 bits.
                if count < 48 {
                    bitBuffer = buffer
                    bitCount = count
                    try refill()
                    buffer = bitBuffer
                    count = bitCount
                    padding = paddingBits
                }
                let entry = Int(lengthTable[Int(buffer & lengthMask)])
                let codeLength = entry & 15
                guard codeLength != 0 else { throw Inflate.failure("invalid Huffman code") }
                buffer >>= UInt64(codeLength)
                count -= codeLength
                let symbol = entry >> 4
                if symbol < 256 {
                    output[produced] = UInt8(truncatingIfNeeded: symbol)
                    produced += 1
                } else if symbol == 256 {
                    guard padding <= count else { throw Inflate.failure("input ended early") }
                    bitBuffer = buffer
                    bitCount = count
                    outputCount = produced
                    return
                } else {
                    let lengthIndex = symbol - 257
                    guard lengthIndex < 29 else { throw Inflate.failure("invalid length symbol") }
                    let lengthExtra = Tables.lengthExtraBits[lengthIndex]
                    let length = Tables.lengthBases[lengthIndex] + Int(buffer & ((UInt64(1) << UInt64(lengthExtra)) - 1))
                    buffer >>= UInt64(lengthExtra)
                    count -= lengthExtra
                    let distanceEntry = Int(distanceTable[Int(buffer & distanceMask)])
                    let distanceLength = distanceEntry & 15
                    guard distanceLength != 0 else { throw Inflate.failure("invalid Huffman code") }
                    buffer >>= UInt64(distanceLength)
                    count -= distanceLength
                    let distanceIndex = distanceEntry >> 4
                    guard distanceIndex < 30 else { throw Inflate.failure("invalid distance symbol") }
                    let distanceExtra = Tables.distanceExtraBits[distanceIndex]
                    let distance =
                        Tables.distanceBases[distanceIndex] + Int(buffer & ((UInt64(1) << UInt64(distanceExtra)) - 1))
                    buffer >>= UInt64(distanceExtra)
                    count -= distanceExtra
                    guard padding <= count else { throw Inflate.failure("input ended early") }
                    guard distance <= produced else {
                        throw Inflate.failure("distance \(distance) reaches before the start")
                    }
                    // Byte by byte on purpose: a copy may overlap the bytes it produces.
                    var from = produced - distance
                    for _ in 0..<length {
                        output[produced] = output[from]
                        produced += 1
                        from += 1
                    }
                }
            }
        }

        func dynamicTables() throws -> (Huffman, Huffman) {
            let lengthCount = try bits(5) + 257
            let distanceCount = try bits(5) + 1
            let codeLengthCount = try bits(4) + 4
            guard lengthCount <= 286, distanceCount <= 30 else {
                throw Inflate.failure("too many length or distance codes")
            }
            var codeLengthLengths = [Int](repeating: 0, count: 19)
            for index in 0..<codeLengthCount {
                codeLengthLengths[Tables.codeLengthOrder[index]] = try bits(3)
            }
            let codeLengthCode = try Huffman(lengths: codeLengthLengths)
            var lengths: [Int] = []
            lengths.reserveCapacity(lengthCount + distanceCount)
            while lengths.count < lengthCount + distanceCount {
                let symbol = try decode(codeLengthCode)
                switch symbol {
                case 0..<16: lengths.append(symbol)
                case 16:
                    guard let previous = lengths.last else { throw Inflate.failure("repeat with no previous length") }
                    lengths += [Int](repeating: previous, count: 3 + (try bits(2)))
                case 17: lengths += [Int](repeating: 0, count: 3 + (try bits(3)))
                default: lengths += [Int](repeating: 0, count: 11 + (try bits(7)))
                }
            }
            guard lengths.count == lengthCount + distanceCount else {
                throw Inflate.failure("code lengths overrun the header counts")
            }
            guard lengths[256] != 0 else { throw Inflate.failure("no end-of-block code") }
            return (
                try Huffman(lengths: Array(lengths[0..<lengthCount])),
                try Huffman(lengths: Array(lengths[lengthCount...]))
            )
        }
    }
}
