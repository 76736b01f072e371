import Foundation

/// An image could not be decoded, encoded, read, written or compared.
///
/// `description` names the source (file name or `"<memory>"`) and what was wrong, e.g.
/// `"photo.png: truncated PNG data (libpng: unexpected end of data)"`.
public struct ImageError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, in broad terms, so callers can react without parsing messages.
    public enum Kind: String, Sendable, Equatable {
        /// The bytes are not in the expected (or any supported) format.
        case notAnImage
        /// The data ended before the image was complete.
        case truncated
        /// The codec rejected the data as malformed.
        case corrupt
        /// A valid file using a variant Storyloom does not handle.
        case unsupported
        /// Parameters given to an encoder or operation are invalid (e.g. channel count, sizes).
        case invalidArgument
        /// Reading or writing the file itself failed.
        case io
        /// The image is too large to allocate.
        case tooLarge
    }

    /// The file (or `"<memory>"`) the error concerns.
    public var source: String
    public var kind: Kind
    /// Human-readable detail, without the source prefix.
    public var message: String

    public init(source: String, kind: Kind, message: String) {
        self.source = source
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(source): \(message)" }
}

extension ImageError: LocalizedError {
    public var errorDescription: String? { description }
}
