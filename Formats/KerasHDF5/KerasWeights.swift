import NNPipeCore
import NNPipeHDF5

/// Where a layer's weights come from, in Keras order (trainable then non-trainable).
protocol KerasWeightSource {
    func weights(of layer: KerasLayerConfig, position: Int) throws -> [Tensor]
}

/// Legacy `.h5`: `model_weights/<layer>/` with a `weight_names` attribute naming each dataset.
struct KerasLegacyWeights: KerasWeightSource {
    let modelWeights: HDF5Group
    let layerNames: Set<String>

    init(file: HDF5File) throws {
        let root = try file.rootGroup()
        // Keras 2 and 3 both nest the weights under model_weights when the whole model is saved.
        modelWeights = root.memberKind("model_weights") == .group ? try root.group("model_weights") : root
        layerNames = Set(try modelWeights.attributes.stringList("layer_names") ?? modelWeights.memberNames())
    }

    func weights(of layer: KerasLayerConfig, position: Int) throws -> [Tensor] {
        guard layerNames.contains(layer.name), modelWeights.memberKind(layer.name) == .group else { return [] }
        let group = try modelWeights.group(layer.name)
        let names = try group.attributes.stringList("weight_names") ?? []
        return try names.map { weightName in
            guard group.memberKind(weightName) == .dataset else {
                throw NNPipeError(.invalidModel, "layer '\(layer.name)': weight '\(weightName)' is listed but missing")
            }
            return try group.dataset(weightName).readTensor(name: weightName)
        }
    }
}

/// `.keras` zip's `model.weights.h5`: `layers/<snake_case class>[_N]/vars/0..k`, with the layer name in
/// the `vars` group's `name` attribute where Keras wrote it.
struct KerasArchiveWeights: KerasWeightSource {
    let groupsByLayer: [String: HDF5Group]

    init(file: HDF5File, config: KerasModelConfig) throws {
        let root = try file.rootGroup()
        guard root.memberKind("layers") == .group else {
            throw NNPipeError(.invalidModel, "model.weights.h5 has no 'layers' group")
        }
        let layers = try root.group("layers")
        var byName: [String: HDF5Group] = [:]
        var unnamed: [String: HDF5Group] = [:]
        for member in try layers.memberNames() where layers.memberKind(member) == .group {
            let group = try layers.group(member)
            if group.memberKind("vars") == .group, let name = try group.group("vars").attributes.string("name") {
                byName[name] = group
            } else {
                unnamed[member] = group
            }
        }
        // Older writers name groups only by class: the N-th layer of a class is "<class>_N".
        var counts: [String: Int] = [:]
        for layer in config.layers where byName[layer.name] == nil {
            let base = Self.snakeCase(layer.className)
            let count = counts[base, default: 0]
            counts[base] = count + 1
            if let group = unnamed[count == 0 ? base : "\(base)_\(count)"] { byName[layer.name] = group }
        }
        groupsByLayer = byName
    }

    func weights(of layer: KerasLayerConfig, position: Int) throws -> [Tensor] {
        guard let group = groupsByLayer[layer.name], group.memberKind("vars") == .group else { return [] }
        let vars = try group.group("vars")
        var tensors: [Tensor] = []
        while vars.memberKind(String(tensors.count)) == .dataset {
            tensors.append(try vars.dataset(String(tensors.count)).readTensor(name: String(tensors.count)))
        }
        return tensors
    }

    static func snakeCase(_ name: String) -> String {
        var result = ""
        let characters = Array(name)
        for (index, character) in characters.enumerated() {
            if character.isUppercase, index > 0,
               characters[index - 1].isLowercase || characters[index - 1].isNumber
                || (index + 1 < characters.count && characters[index + 1].isLowercase && characters[index - 1].isUppercase) {
                result.append("_")
            }
            result.append(character.lowercased())
        }
        return result
    }
}
