/// The ops of kernel files other than activations and arithmetic, by name.
extension OperatorRegistry {
    static var extraDefaultDomain: [String: Entry] {
        [:]
    }
}
