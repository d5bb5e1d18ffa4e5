extension StringProtocol {
    /// Text from a file made safe for a one-line error: control characters become '?', and
    /// anything past `limit` characters is cut, so a hostile name cannot break the line.
    func printable(limit: Int = 100) -> String {
        let scalars = unicodeScalars.prefix(limit + 1).map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) }
        let text = String(scalars.prefix(limit))
        return scalars.count > limit ? text + "..." : text
    }
}
