import NNPipeCore

/// Typed reads of a layer's config values, with Keras's defaults and one-line errors.
extension KerasLayerConfig {
    func integer(_ key: String, default fallback: Int? = nil) throws -> Int {
        if let value = self[key], !value.isNull {
            if let number = value.integerValue { return number }
            if let list = value.arrayValue, list.count == 1, let number = list[0].integerValue { return number }
            throw invalid(key, value, "an integer")
        }
        if let fallback { return fallback }
        throw NNPipeError(.invalidModel, "layer '\(name)' (\(className)) has no '\(key)'")
    }

    func number(_ key: String, default fallback: Double) throws -> Double {
        guard let value = self[key], !value.isNull else { return fallback }
        guard let number = value.numberValue else { throw invalid(key, value, "a number") }
        return number
    }

    func optionalNumber(_ key: String) throws -> Double? {
        guard let value = self[key], !value.isNull else { return nil }
        guard let number = value.numberValue else { throw invalid(key, value, "a number") }
        return number
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let value = self[key], !value.isNull else { return fallback }
        guard let flag = value.boolValue else { throw invalid(key, value, "true or false") }
        return flag
    }

    func string(_ key: String, default fallback: String) throws -> String {
        guard let value = self[key], !value.isNull else { return fallback }
        guard let text = value.stringValue else { throw invalid(key, value, "a string") }
        return text
    }

    /// An int-or-tuple setting (`kernel_size: 3` or `[3, 3]`) as `count` integers.
    func integers(_ key: String, count: Int, default fallback: [Int]? = nil) throws -> [Int] {
        guard let value = self[key], !value.isNull else {
            if let fallback { return fallback }
            throw NNPipeError(.invalidModel, "layer '\(name)' (\(className)) has no '\(key)'")
        }
        if let number = value.integerValue { return Array(repeating: number, count: count) }
        guard let list = value.arrayValue?.compactMap(\.integerValue), list.count == value.arrayValue?.count else {
            throw invalid(key, value, "an integer or a list of integers")
        }
        if list.count == 1 { return Array(repeating: list[0], count: count) }
        guard list.count == count else { throw invalid(key, value, "\(count) integers") }
        return list
    }

    /// Begin/end pairs per spatial axis from `padding`/`cropping`: `n`, `[a, b]` (symmetric per axis) or `[[t, b], [l, r]]`.
    func pairs(_ key: String, axes: Int) throws -> [(begin: Int, end: Int)] {
        let pairs = try unboundedPairs(key, axes: axes)
        // Negative padding or cropping means nothing in Keras; past 2^24 it overflows the shape arithmetic.
        guard pairs.allSatisfy({ (0...Self.sizeLimit).contains($0.begin) && (0...Self.sizeLimit).contains($0.end) }) else {
            throw invalid(key, self[key] ?? .null, "sizes from 0 to \(Self.sizeLimit)")
        }
        return pairs
    }

    /// Kernel, stride, pool, padding and upsampling sizes past this describe no real layer.
    static let sizeLimit = 1 << 24

    /// `integers(key, count:)`, each from 1 to `sizeLimit`: window and upsampling sizes.
    func sizes(_ key: String, count: Int, default fallback: [Int]? = nil) throws -> [Int] {
        let values = try integers(key, count: count, default: fallback)
        guard values.allSatisfy({ (1...Self.sizeLimit).contains($0) }) else {
            throw invalid(key, self[key] ?? .null, "sizes from 1 to \(Self.sizeLimit)")
        }
        return values
    }

    private func unboundedPairs(_ key: String, axes: Int) throws -> [(begin: Int, end: Int)] {
        guard let value = self[key] else { throw NNPipeError(.invalidModel, "layer '\(name)' has no '\(key)'") }
        if let number = value.integerValue { return Array(repeating: (number, number), count: axes) }
        guard let list = value.arrayValue else { throw invalid(key, value, "integers or pairs") }
        if axes == 1, list.count == 2, let begin = list[0].integerValue, let end = list[1].integerValue {
            return [(begin, end)]
        }
        guard list.count == axes else { throw invalid(key, value, "\(axes) entries") }
        return try list.map { entry in
            if let number = entry.integerValue { return (number, number) }
            guard let pair = entry.arrayValue?.compactMap(\.integerValue), pair.count == 2 else {
                throw invalid(key, value, "integers or pairs")
            }
            return (pair[0], pair[1])
        }
    }

    /// `axis` as a single integer (Keras 2 BatchNormalization writes `[3]`).
    func axis(default fallback: Int = -1) throws -> Int {
        try integer("axis", default: fallback)
    }

    func invalid(_ key: String, _ value: JSONValue, _ expected: String) -> NNPipeError {
        NNPipeError(.invalidModel, "layer '\(name)' (\(className)): '\(key)' is \(value), expected \(expected)")
    }

    func unsupported(_ message: String) -> NNPipeError {
        NNPipeError(.unsupported, "layer '\(name)' (\(className)): \(message)")
    }
}

/// Row-major array helpers for weight layout changes.
enum WeightLayout {
    /// `values` of `shape` transposed by `permutation` (numpy's `transpose`).
    /// - Complexity: O(elements).
    static func permute(_ values: [Float], shape: [Int], permutation: [Int]) -> [Float] {
        precondition(values.count == shape.reduce(1, *) && permutation.count == shape.count)
        let rank = shape.count
        guard rank > 1 else { return values }
        var strides = [Int](repeating: 1, count: rank)
        for axis in stride(from: rank - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * shape[axis + 1] }
        let outputShape = permutation.map { shape[$0] }
        let sourceStrides = permutation.map { strides[$0] }
        var result = [Float](repeating: 0, count: values.count)
        var index = [Int](repeating: 0, count: rank)
        for position in 0..<values.count {
            var source = 0
            for axis in 0..<rank { source += index[axis] * sourceStrides[axis] }
            result[position] = values[source]
            var axis = rank - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < outputShape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
        return result
    }
}
