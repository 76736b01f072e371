import Foundation

/// Copies every shown media file into `media/` once, named by content hash (or hash of the path),
/// and answers the relative source to use for it, or nil when the source is missing.
final class MediaCatalog {
    private let mediaFolder: URL
    private var placed: [MediaFile: String?] = [:]
    /// File names written under `media/` in this render; everything else there is stale.
    private(set) var names = Set<String>()

    init(mediaFolder: URL) {
        self.mediaFolder = mediaFolder
    }

    /// The path of `file` relative to the gallery root (`media/<name>`), or nil when its source
    /// is missing or not a regular file. Throws only when the gallery folder cannot be written.
    func place(_ file: MediaFile) throws -> String? {
        if let known = placed[file] { return known }
        let result = try copyIntoFolder(file)
        placed[file] = result
        return result
    }

    private func copyIntoFolder(_ file: MediaFile) throws -> String? {
        let fm = FileManager.default
        // Resolve links first: a hard link to a symlink would point wherever the symlink points.
        let source = URL(fileURLWithPath: file.path).resolvingSymlinksInPath()
        guard let attributes = try? fm.attributesOfItem(atPath: source.path),
              attributes[.type] as? FileAttributeType == .typeRegular,
              fm.isReadableFile(atPath: source.path) else {
            return nil
        }
        let name = SafeName.mediaName(file)
        let destination = mediaFolder.appendingPathComponent(name)
        let contentAddressed = SafeName.contentHash(file) != nil
        if names.contains(name) || (contentAddressed && fm.fileExists(atPath: destination.path)) {
            names.insert(name)
            return "media/" + name
        }
        // A path-named file may have changed since the last render: replace it.
        if fm.fileExists(atPath: destination.path) || (try? fm.destinationOfSymbolicLink(atPath: destination.path)) != nil {
            do { try fm.removeItem(at: destination) } catch {
                throw GalleryError("cannot replace \(destination.path): \(error.localizedDescription)")
            }
        }
        do {
            try fm.linkItem(at: source, to: destination)
        } catch {
            do { try fm.copyItem(at: source, to: destination) } catch {
                // An unreadable source is a missing image, not a failed gallery.
                if !fm.isReadableFile(atPath: source.path) { return nil }
                throw GalleryError("cannot copy \(file.path) to \(destination.path): \(error.localizedDescription)")
            }
        }
        names.insert(name)
        return "media/" + name
    }
}

/// A gallery could not be written: the message names the folder or file and what went wrong.
public struct GalleryError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "gallery: " + message }
}
