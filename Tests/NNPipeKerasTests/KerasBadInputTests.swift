import Foundation
import NNPipeCore
import NNPipeHDF5
import NNPipeKeras
import NNPipeTestKit
import Testing

/// Broken, hostile and unsupported files end in one clear line, never a crash.
@Suite("Keras bad input")
struct KerasBadInputTests {
    /// A copy of a fixture whose model_config text went through `edit`.
    static func editedCopy(_ fixture: String, in folder: URL, _ edit: (String) -> String) throws -> URL {
        let url = folder.appendingPathComponent("edited.h5")
        try FileManager.default.copyItem(at: TestEnvironment.fixture("keras/\(fixture)"), to: url)
        do {
            let root = try HDF5File(updating: url).rootGroup()
            let config = try #require(try root.attributes.string("model_config"))
            let edited = edit(config)
            #expect(edited != config, "the edit changed nothing")
            try root.attributes.set("model_config", string: edited)
        }
        return url
    }

    struct ConfigCase: CustomStringConvertible, Sendable {
        var description: String
        var fixture: String
        var find: String
        var replace: String
        var code: NNPipeError.Code
        var message: String
    }

    static let configCases: [ConfigCase] = [
        ConfigCase(description: "Lambda layer", fixture: "k3_mlp.h5", find: #""class_name": "Dense""#,
                   replace: #""class_name": "Lambda", "function": {"class_name": "__lambda__", "config": {"code": "YWJj"}}, "x": "Dense""#,
                   code: .unsupported, message: "carries Python code"),
        ConfigCase(description: "unknown layer class", fixture: "k3_mlp.h5", find: #""class_name": "PReLU""#,
                   replace: #""class_name": "FancyLayer""#, code: .unsupported, message: "unsupported Keras layer 'FancyLayer' (layer 'prelu')"),
        ConfigCase(description: "weight shape mismatch", fixture: "k3_mlp.h5", find: #""units": 24"#, replace: #""units": 25"#,
                   code: .invalidModel, message: "layer 'dense1' (Dense): weight 'kernel' has shape [16, 24], expected [16, 25]"),
        ConfigCase(description: "input from a missing layer", fixture: "k3_multi_input.h5", find: #""keras_history": ["side", 0, 0]"#,
                   replace: #""keras_history": ["ghost", 0, 0]"#, code: .invalidModel, message: "layer 'ghost', which the model does not have"),
        ConfigCase(description: "layer without its weights", fixture: "k2_sequential_cnn.h5", find: #""name": "logits""#,
                   replace: #""name": "renamed""#, code: .invalidModel, message: "the file holds 0 weights for it, expected 2"),
        ConfigCase(description: "not JSON", fixture: "k3_mlp.h5", find: "{", replace: "<", code: .invalidModel, message: "model_config is not valid JSON"),
        // Each of the next three trapped the process before (a division by zero, Int overflow in a Flatten).
        ConfigCase(description: "stride 0", fixture: "k2_sequential_cnn.h5", find: #""strides": [1, 1], "padding": "same""#,
                   replace: #""strides": [0, 0], "padding": "same""#, code: .invalidModel, message: "'strides' is [0,0], expected sizes from 1 to 16777216"),
        ConfigCase(description: "pool larger than its input", fixture: "k2_sequential_cnn.h5", find: #""pool_size": [2, 2]"#,
                   replace: #""pool_size": [9, 9]"#, code: .invalidModel, message: "its window of 9 is larger than the input's 8 on spatial axis 0"),
        ConfigCase(description: "input of 2^40 rows", fixture: "k2_sequential_cnn.h5", find: #""batch_input_shape": [null, 8, 8, 1]"#,
                   replace: #""batch_input_shape": [null, 1099511627776, 8, 1]"#, code: .invalidModel,
                   message: "input layer 'image' has dimension 1099511627776 in its batch_shape [None, 1099511627776, 8, 1]"),
        // Permute to a missing axis indexed out of range; the others converted into graphs no runtime takes.
        ConfigCase(description: "Permute to a missing axis", fixture: "k2_sequence.h5", find: #""dims": [2, 1]"#, replace: #""dims": [2, 7]"#,
                   code: .unsupported, message: "'dims' must list every non-batch axis (1 to 2) once"),
        ConfigCase(description: "negative cropping", fixture: "k2_separable.h5", find: #""cropping": [[1, 2], [2, 1]]"#,
                   replace: #""cropping": [[-1, 2], [2, 1]]"#, code: .invalidModel, message: "'cropping' is [[-1,2],[2,1]], expected sizes from 0 to 16777216"),
        ConfigCase(description: "upsampling by 0", fixture: "k2_extras.h5", find: #""size": [2, 2]"#, replace: #""size": [0, 2]"#,
                   code: .invalidModel, message: "'size' is [0,2], expected sizes from 1 to 16777216"),
        ConfigCase(description: "Softmax on a missing axis", fixture: "k2_mlp.h5", find: #""dtype": "float32", "axis": -1}, "name": "probabilities""#,
                   replace: #""dtype": "float32", "axis": 5}, "name": "probabilities""#, code: .unsupported, message: "axis 5 is outside the input's 2 axes"),
    ]

    @Test("bad model configs fail with one line naming the problem", arguments: configCases)
    func badConfig(_ item: ConfigCase) throws {
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = try Self.editedCopy(item.fixture, in: folder) { $0.replacingOccurrences(of: item.find, with: item.replace) }
        let error = try #require(throws: NNPipeError.self) { try KerasFixtures.registry.read(url) }
        #expect(error.code == item.code)
        #expect(error.message.contains(item.message), "\(error)")
        #expect(error.path == url.path)
        #expect(!error.description.contains("\n"))
    }

    @Test("truncated, empty and foreign files")
    func brokenFiles() throws {
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let bytes = try Data(contentsOf: TestEnvironment.fixture("keras/k3_mlp.h5"))
        let truncated = folder.appendingPathComponent("truncated.h5")
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        let error = try #require(throws: NNPipeError.self) { try KerasFixtures.registry.read(truncated) }
        #expect(error.code == .invalidModel)
        #expect(error.message.hasPrefix("not a readable HDF5 file"), "\(error)")
        #expect(error.message.contains("truncated"), "\(error)")
        #expect(!error.description.contains("\n"))

        let text = folder.appendingPathComponent("text.h5")
        try Data("not hdf5".utf8).write(to: text)
        #expect(throws: NNPipeError.self) { try KerasFormat().read(from: text) }
        let unknown = try #require(throws: NNPipeError.self) { try KerasFixtures.registry.read(text) }
        #expect(unknown.message.hasPrefix("not a model file nnpipe can read"))

        let plain = folder.appendingPathComponent("plain.h5")
        do {
            try HDF5File(creating: plain).rootGroup().createDataset("x", tensor: Tensor(name: "x", shape: [1], values: [Float(1)]))
        }
        let notKeras = try #require(throws: NNPipeError.self) { try KerasFormat().read(from: plain) }
        #expect(notKeras.message.contains("not a Keras model"))
    }

    @Test("a weights-only file says it has weights but no architecture")
    func weightsOnly() throws {
        let url = TestEnvironment.fixture("keras/k3_mlp.weights.h5")
        #expect(KerasFormat().recognizes(fileAt: url, header: Array(try Data(contentsOf: url).prefix(4096))))
        let error = try #require(throws: NNPipeError.self) { try KerasFixtures.registry.read(url) }
        #expect(error.message.contains("holds Keras weights but no architecture"))
    }

    @Test("a .keras archive with compressed entries is refused clearly")
    func compressedArchive() throws {
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("deflated.keras")
        try ZipBuilder.single(name: "config.json", payload: Array("{}".utf8), method: 8).write(to: url)
        #expect(KerasArchiveFormat().recognizes(fileAt: url, header: ZipBuilder.single(name: "config.json", payload: [], method: 8).map { $0 }))
        let error = try #require(throws: NNPipeError.self) { try KerasArchiveFormat().read(from: url) }
        #expect(error.message.contains("is compressed"), "\(error)")
        let cut = folder.appendingPathComponent("cut.keras")
        try Data(try Data(contentsOf: TestEnvironment.fixture("keras/k3_mlp.h5")).prefix(0)).write(to: cut)
        #expect(throws: NNPipeError.self) { try KerasArchiveFormat().read(from: cut) }
    }

    @Test("sniffing picks the format from the bytes", arguments: [
        ("k3_mlp.h5", "keras-h5"), ("k2_sequence.h5", "keras-h5"), ("k3_multi_input.keras", "keras"),
    ])
    func sniffing(file: String, format: String) throws {
        // Renamed to a neutral extension: the content decides.
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("model.bin")
        try FileManager.default.copyItem(at: TestEnvironment.fixture("keras/\(file)"), to: url)
        #expect(try KerasFixtures.registry.format(forInput: url).name == format)
    }
}

/// Builds a one-entry zip by hand (only what the archive reader looks at).
enum ZipBuilder {
    static func single(name: String, payload: [UInt8], method: UInt16) -> Data {
        func u16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
        func u32(_ value: Int) -> [UInt8] { u16(value & 0xFFFF) + u16(value >> 16 & 0xFFFF) }
        let nameBytes = Array(name.utf8)
        var bytes: [UInt8] = [0x50, 0x4B, 3, 4] + u16(20) + u16(0) + u16(Int(method)) + u32(0) + u32(0)
            + u32(payload.count) + u32(payload.count) + u16(nameBytes.count) + u16(0) + nameBytes + payload
        let central = bytes.count
        bytes += [0x50, 0x4B, 1, 2] + u16(20) + u16(20) + u16(0) + u16(Int(method)) + u32(0) + u32(0)
            + u32(payload.count) + u32(payload.count) + u16(nameBytes.count) + u16(0) + u16(0) + u16(0) + u16(0) + u32(0) + u32(0) + nameBytes
        let centralSize = bytes.count - central
        bytes += [0x50, 0x4B, 5, 6] + u16(0) + u16(0) + u16(1) + u16(1) + u32(centralSize) + u32(central) + u16(0)
        return Data(bytes)
    }
}
