/// How to make a stage of one kind: its declaration plus a factory. Built-in stages,
/// in-process plugins and out-of-process plugins all register one of these (house rule 4).
public struct StageDescriptor: Sendable {
    public var kind: String
    public var summary: String
    public var options: [OptionSpec]
    /// "built-in", or the plugin's path.
    public var origin: String
    public var checkPlacement: @Sendable (StageInvocation, [StageInvocation]) -> [NNPipeError]
    public var make: @Sendable (StageOptions) throws -> any Stage

    public init(
        kind: String, summary: String, options: [OptionSpec], origin: String = "built-in",
        checkPlacement: @escaping @Sendable (StageInvocation, [StageInvocation]) -> [NNPipeError] = { _, _ in [] },
        make: @escaping @Sendable (StageOptions) throws -> any Stage
    ) {
        self.kind = kind
        self.summary = summary
        self.options = options
        self.origin = origin
        self.checkPlacement = checkPlacement
        self.make = make
    }

    /// The descriptor of a Swift `Stage` type.
    public init<S: Stage>(_ type: S.Type, origin: String = "built-in") {
        self.init(
            kind: S.kind, summary: S.summary, options: S.options, origin: origin,
            checkPlacement: { S.checkPlacement($0, in: $1) },
            make: { try S(options: $0) })
    }
}

/// The stages a pipeline may use, by kind. Passed explicitly, never global.
public struct StageRegistry: Sendable {
    public private(set) var descriptors: [StageDescriptor] = []

    public init(_ descriptors: [StageDescriptor] = []) {
        for descriptor in descriptors { register(descriptor) }
    }

    /// Adds or replaces the stage of `descriptor.kind`.
    public mutating func register(_ descriptor: StageDescriptor) {
        descriptors.removeAll { $0.kind == descriptor.kind }
        descriptors.append(descriptor)
    }

    public mutating func register<S: Stage>(_ type: S.Type) {
        register(StageDescriptor(type))
    }

    public func descriptor(for kind: String) -> StageDescriptor? {
        descriptors.first { $0.kind == kind }
    }

    public var kinds: [String] { descriptors.map(\.kind) }
}
