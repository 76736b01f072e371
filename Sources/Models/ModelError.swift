import Foundation

/// The one error type of Models: a model folder, config, tokenizer file or tensor the code cannot use, or a
/// call it cannot serve — located by file and, where there is one, the config key or tensor name.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public var file: String?
    /// A config key or tensor name.
    public var field: String?
    public var message: String

    /// A call the model cannot serve (no file involved).
    public init(_ message: String) {
        self.message = message
    }

    public init(file: URL, _ message: String) {
        self.file = file.path
        self.message = message
    }

    public init(file: String, field: String? = nil, _ message: String) {
        self.file = file
        self.field = field
        self.message = message
    }

    public var description: String {
        (file.map { "\($0): " } ?? "") + (field.map { "\($0): " } ?? "") + message
    }
}
