import Foundation
import NNPipeCore
import NNPipePlugins

/// Shared by run and validate: decode, validate and preflight a manifest file.
enum ManifestLoading {
    static func load(_ path: String, toolkit: Toolkit) throws -> Manifest {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw NNPipeError(.usage, "manifest not found", path: path)
        }
        var decoder = ManifestDecoder(registry: toolkit.stages, pluginResolver: { try PluginHost.descriptors(for: $0) })
        decoder.unknownKindResolver = { kind in
            guard let executable = PluginHost.executablesOnPath().first(where: { $0.lastPathComponent == PluginProtocol.executablePrefix + kind }) else {
                return nil
            }
            return try PluginHost.descriptor(for: executable)
        }
        let manifest = try decoder.decode(fileAt: url)
        return manifest
    }

    /// The toolkit's stages plus the plugins a manifest names (for running it).
    static func toolkit(_ toolkit: Toolkit, with manifest: Manifest) throws -> Toolkit {
        var extended = toolkit
        for descriptor in try PluginHost.descriptors(for: manifest.plugins) { extended.stages.register(descriptor) }
        for invocation in manifest.stages where extended.stages.descriptor(for: invocation.kind) == nil {
            if let executable = PluginHost.executablesOnPath().first(where: { $0.lastPathComponent == PluginProtocol.executablePrefix + invocation.kind }) {
                extended.stages.register(try PluginHost.descriptor(for: executable))
            }
        }
        return extended
    }

    static func runner(toolkit: Toolkit, progress: ProgressReporter) -> PipelineRunner {
        PipelineRunner(registry: toolkit.stages, formats: toolkit.formats, progress: progress, evaluator: toolkit.evaluator)
    }
}
