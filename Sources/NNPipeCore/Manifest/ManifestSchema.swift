/// A JSON Schema (draft 2020-12) of manifest version 1, built from the same declarations the
/// validator uses, so editors can autocomplete manifests and the docs cannot drift.
public enum ManifestSchema {
    public static func jsonSchema(registry: StageRegistry) -> JSONValue {
        let datasetSchema: JSONValue = .object([
            ("type", .string("object")),
            ("required", .array([.string("path")])),
            ("additionalProperties", .bool(false)),
            ("properties", .object([
                ("path", describe(.object([("type", .string("string"))]), "file: .h5/.hdf5, .npy, .npz, or a folder of TensorProto .pb files; relative to the manifest")),
                ("inputs", describe(.object([("oneOf", .array([
                    .object([("type", .string("string"))]),
                    .object([("type", .string("object")), ("additionalProperties", .object([("type", .string("string"))]))]),
                ]))]), "key of the input array (single-input model), or {model input name: key}")),
                ("labels", describe(.object([("type", .string("string"))]), "key of the label array")),
                ("limit", describe(.object([("type", .string("integer")), ("minimum", .number(1))]), "use at most this many samples")),
                ("batch_size", describe(.object([("type", .string("integer")), ("minimum", .number(1)), ("default", .number(32))]), "samples per batch")),
                ("shuffle", describe(.object([("type", .string("boolean")), ("default", .bool(false))]), "visit samples in a seeded random order")),
                ("seed", describe(.object([("type", .string("integer")), ("minimum", .number(0)), ("default", .number(0))]), "seed for shuffle")),
            ])),
        ])
        let stageSchemas: [JSONValue] = registry.descriptors.map { descriptor in
            var properties: [(String, JSONValue)] = [("stage", .object([("const", .string(descriptor.kind))]))]
            for option in descriptor.options { properties.append((option.name, schema(for: option))) }
            let required = ["stage"] + descriptor.options.filter(\.required).map(\.name)
            return .object([
                ("title", .string(descriptor.kind)),
                ("description", .string(descriptor.summary)),
                ("type", .string("object")),
                ("required", .array(required.map { .string($0) })),
                ("additionalProperties", .bool(false)),
                ("properties", .object(properties)),
            ])
        }
        return .object([
            ("$schema", .string("https://json-schema.org/draft/2020-12/schema")),
            ("title", .string("nnpipe pipeline manifest, version 1")),
            ("type", .string("object")),
            ("required", .array([.string("version"), .string("model"), .string("stages")])),
            ("additionalProperties", .bool(false)),
            ("properties", .object([
                ("version", describe(.object([("const", .number(1))]), "manifest format version")),
                ("name", describe(.object([("type", .string("string"))]), "pipeline name, used in the report and the default output_dir")),
                ("model", describe(.object([("oneOf", .array([
                    .object([("type", .string("string"))]),
                    .object([
                        ("type", .string("object")), ("required", .array([.string("path")])),
                        ("additionalProperties", .bool(false)),
                        ("properties", .object([
                            ("path", .object([("type", .string("string"))])),
                            ("format", .object([("enum", .array(ManifestDecoder.modelFormats.map { .string($0) }))])),
                        ])),
                    ]),
                ]))]), "input model path (relative to the manifest), or {path, format}; the format is sniffed from content otherwise")),
                ("output_dir", describe(.object([("type", .string("string"))]), "folder for report.json and exports (default out/<name>)")),
                ("datasets", describe(.object([("type", .string("object")), ("additionalProperties", datasetSchema)]), "named data sets that stages and evaluate refer to")),
                ("evaluate", describe(.object([
                    ("type", .string("object")), ("required", .array([.string("dataset")])),
                    ("additionalProperties", .bool(false)),
                    ("properties", .object([
                        ("dataset", .object([("type", .string("string"))])),
                        ("metrics", .object([("type", .string("array")), ("items", .object([("enum", .array(EvaluationSpecification.knownMetrics.map { .string($0) }))]))])),
                        ("top_k", .object([("type", .string("integer")), ("minimum", .number(1)), ("default", .number(5))])),
                        ("output", .object([("type", .string("string")), ("description", .string("model output to score (default: the first float output of rank 2)"))])),
                    ])),
                ]), "measure the model on a dataset after import and after every stage")),
                ("plugins", describe(.object([("type", .string("array")), ("items", .object([("type", .string("string"))]))]), "out-of-process stage executables (nnpipe-stage-<kind>), relative to the manifest")),
                ("stages", describe(.object([("type", .string("array")), ("items", .object([("oneOf", .array(stageSchemas))]))]), "the steps, run in order")),
            ])),
        ])
    }

    private static func describe(_ schema: JSONValue, _ text: String) -> JSONValue {
        guard var members = schema.objectValue else { return schema }
        members.append((key: "description", value: .string(text)))
        return JSONValue(.object(members))
    }

    static func schema(for option: OptionSpec) -> JSONValue {
        var members = kindSchema(option.kind).objectValue ?? []
        if let minimum = option.minimum {
            members.append((key: option.exclusiveMinimum ? "exclusiveMinimum" : "minimum", value: .number(minimum)))
        }
        if let maximum = option.maximum {
            members.append((key: option.exclusiveMaximum ? "exclusiveMaximum" : "maximum", value: .number(maximum)))
        }
        if let defaultValue = option.defaultValue { members.append((key: "default", value: defaultValue)) }
        members.append((key: "description", value: .string(option.help)))
        var result = JSONValue(.object(members))
        if option.allowsNull {
            result = .object([("anyOf", .array([result, .object([("type", .string("null"))])]))])
        }
        return result
    }

    static func kindSchema(_ kind: OptionSpec.ValueKind) -> JSONValue {
        switch kind {
        case .string, .datasetReference: .object([("type", .string("string"))])
        case .integer: .object([("type", .string("integer"))])
        case .number: .object([("type", .string("number"))])
        case .boolean: .object([("type", .string("boolean"))])
        case .choice(let values): .object([("enum", .array(values.map { .string($0) }))])
        case .stringList: .object([("type", .string("array")), ("items", .object([("type", .string("string"))]))])
        case .numberList: .object([("type", .string("array")), ("items", .object([("type", .string("number"))]))])
        case .object(let fields):
            .object([
                ("type", .string("object")), ("additionalProperties", .bool(false)),
                ("required", .array(fields.filter(\.required).map { .string($0.name) })),
                ("properties", .object(fields.map { ($0.name, schema(for: $0)) })),
            ])
        case .either(let first, let second): .object([("anyOf", .array([kindSchema(first), kindSchema(second)]))])
        }
    }
}
