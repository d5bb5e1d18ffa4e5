import NNPipeCore

/// A DEFLATE (RFC 1951) decoder, so compressed `.npz` members open without linking zlib.
///
/// Follows the structure of Mark Adler's `puff.c`: canonical Huffman codes decoded a bit at a
/// time. That is slower than zlib's table decoder but small and easy to check, and data sets are
/// decoded once per open.
enum Inflate {
    /// Decompresses a raw DEFLATE stream (no zlib or gzip wrapper).
    /// - Parameter expectedCount: the size the archive declares, used to reserve and to check.
    static func decompress(_ input: [UInt8], expectedCount: Int? = nil) throws -> [UInt8] {
        try input.withUnsafeBufferPointer { buffer in
            var state = State(input: buffer)
            if let expectedCount { state.output.reserveCapacity(expectedCount) }
            var isLast = false
            while !isLast {
                isLast = try state.bits(1) == 1
                switch try state.bits(2) {
                case 0: try state.storedBlock()
                case 1: try state.codesBlock(lengths: Tables.fixedLengths, distances: Tables.fixedDistances)
                case 2:
                    let (lengths, distances) = try state.dynamicTables()
                    try state.codesBlock(lengths: lengths, distances: distances)
                default: throw failure("block type 3 is reserved")
                }
            }
            if let expectedCount, state.output.count != expectedCount {
                throw failure("inflated to \(state.output.count) bytes, archive says \(expectedCount)")
            }
            return state.output
        }
    }

    static func failure(_ message: String) -> NNPipeError {
        NNPipeError(.invalidData, "corrupt deflate data: \(message)")
    }

    /// A canonical Huffman code: how many codes have each length, and the symbols in code order.
    struct Huffman {
        var counts = [Int](repeating: 0, count: 16)
        var symbols: [Int]

        /// Builds the code from per-symbol bit lengths (0 = unused); rejects over-subscribed sets.
        init(lengths: [Int]) throws {
            symbols = [Int](repeating: 0, count: lengths.count)
            for length in lengths { counts[length] += 1 }
            if counts[0] == lengths.count { return }  // no codes: only an error if used
            var left = 1
            for length in 1..<16 {
                left <<= 1
                left -= counts[length]
                if left < 0 { throw Inflate.failure("over-subscribed Huffman code") }
            }
            var offsets = [Int](repeating: 0, count: 16)
            for length in 1..<15 { offsets[length + 1] = offsets[length] + counts[length] }
            for (symbol, length) in lengths.enumerated() where length != 0 {
                symbols[offsets[length]] = symbol
                offsets[length] += 1
            }
        }
    }

    enum Tables {
        static let lengthBase = [
            3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
            131, 163, 195, 227, 258,
        ]
        static let lengthExtra = [
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
        ]
        static let distanceBase = [
            1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
            2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
        ]
        static let distanceExtra = [
            0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
            13, 13,
        ]
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

    struct State {
        let input: UnsafeBufferPointer<UInt8>
        var position = 0
        var bitBuffer = 0
        var bitCount = 0
        var output: [UInt8] = []

        init(input: UnsafeBufferPointer<UInt8>) { self.input = input }

        /// The next `count` bits, least significant first.
        mutating func bits(_ count: Int) throws -> Int {
            var value = bitBuffer
            while bitCount < count {
                guard position < input.count else { throw Inflate.failure("input ended early") }
                value |= Int(input[position]) << bitCount
                position += 1
                bitCount += 8
            }
            bitBuffer = value >> count
            bitCount -= count
            return value & ((1 << count) - 1)
        }

        mutating func storedBlock() throws {
            bitBuffer = 0
            bitCount = 0
            guard position + 4 <= input.count else { throw Inflate.failure("input ended early") }
            let length = Int(input[position]) | Int(input[position + 1]) << 8
            let complement = Int(input[position + 2]) | Int(input[position + 3]) << 8
            position += 4
            guard length == ~complement & 0xFFFF else {
                throw Inflate.failure("stored block length check failed")
            }
            guard position + length <= input.count else { throw Inflate.failure("input ended early") }
            output.append(contentsOf: input[position..<(position + length)])
            position += length
        }

        mutating func decode(_ code: Huffman) throws -> Int {
            var value = 0
            var first = 0
            var index = 0
            for length in 1..<16 {
                value |= try bits(1)
                let count = code.counts[length]
                if value - count < first { return code.symbols[index + (value - first)] }
                index += count
                first += count
                first <<= 1
                value <<= 1
            }
            throw Inflate.failure("invalid Huffman code")
        }

        mutating func codesBlock(lengths: Huffman, distances: Huffman) throws {
            while true {
                let symbol = try decode(lengths)
                if symbol < 256 {
                    output.append(UInt8(symbol))
                } else if symbol == 256 {
                    return
                } else {
                    let lengthIndex = symbol - 257
                    guard lengthIndex < 29 else { throw Inflate.failure("invalid length symbol") }
                    let length =
                        Tables.lengthBase[lengthIndex] + (try bits(Tables.lengthExtra[lengthIndex]))
                    let distanceIndex = try decode(distances)
                    guard distanceIndex < 30 else { throw Inflate.failure("invalid distance symbol") }
                    let distance =
                        Tables.distanceBase[distanceIndex]
                        + (try bits(Tables.distanceExtra[distanceIndex]))
                    guard distance <= output.count else {
                        throw Inflate.failure("distance \(distance) reaches before the start")
                    }
                    // Byte by byte on purpose: a copy may overlap the bytes it produces.
                    let start = output.count - distance
                    for offset in 0..<length { output.append(output[start + offset]) }
                }
            }
        }

        mutating func dynamicTables() throws -> (Huffman, Huffman) {
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
                    guard let previous = lengths.last else {
                        throw Inflate.failure("repeat with no previous length")
                    }
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
