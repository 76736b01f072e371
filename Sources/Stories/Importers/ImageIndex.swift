import Foundation

/// The image files of a dataset folder, scanned once and looked up by photo id.
///
/// Datasets name images after an id: VIST uses the Flickr photo id (`12345.jpg`), VisDial and COCO embed
/// the image id as the trailing number of the name (`VisualDialog_val2018_000000000123.jpg`,
/// `COCO_train2014_000000000123.jpg`, `123.jpg`). Scanning the folder once and keying by id is far cheaper
/// than probing the disk for every id and extension. Subfolders are scanned too, so a folder holding
/// `train2014/` and `val2014/` serves VisDial's train split, whose images come from both.
struct ImageIndex: Sendable {
    /// Extensions the Imaging codecs decode, in order of preference when an id has several files.
    static let extensions = ["jpg", "jpeg", "png"]

    /// The scanned folder.
    let folder: URL
    /// Image paths relative to `folder`, by file name without extension.
    private(set) var byStem: [String: String] = [:]
    /// Image paths relative to `folder`, by the trailing integer of the file name.
    private(set) var byNumber: [Int64: String] = [:]
    /// How many image files were found.
    private(set) var count = 0

    /// Scans `folder` (recursively, skipping hidden files) for `.jpg`, `.jpeg` and `.png` files.
    init(folder: URL) throws {
        self.folder = folder.standardizedFileURL
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: self.folder.path, isDirectory: &isDir), isDir.boolValue else {
            throw CollectionError(file: self.folder.path, "images folder not found (expected a folder of .jpg/.jpeg/.png files)")
        }
        guard let walker = FileManager.default.enumerator(atPath: self.folder.path) else {
            throw CollectionError(file: self.folder.path, "cannot list the images folder")
        }
        // Sorted so that the choice between two files with the same id does not depend on listing order.
        var paths: [String] = []
        while let relative = walker.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            if name.hasPrefix(".") { continue }
            let ext = (name as NSString).pathExtension.lowercased()
            if Self.extensions.contains(ext) { paths.append(relative) }
        }
        paths.sort { Self.rank($0) < Self.rank($1) }
        for relative in paths {
            let stem = ((relative as NSString).lastPathComponent as NSString).deletingPathExtension
            if byStem[stem] == nil { byStem[stem] = relative }
            if let number = Self.trailingNumber(of: stem), byNumber[number] == nil { byNumber[number] = relative }
        }
        count = paths.count
    }

    /// The image named `id` plus an image extension (VIST photo ids).
    func path(stem id: String) -> String? { byStem[id] }

    /// The image whose name ends in the number `id` (VisDial / COCO image ids).
    func path(number id: Int64) -> String? { byNumber[id] }

    /// A short name of the folder for warnings, e.g. "images/".
    var displayName: String { folder.lastPathComponent + "/" }

    /// Shallower paths first, then preferred extension, then name.
    static func rank(_ path: String) -> (Int, Int, String) {
        let depth = path.split(separator: "/").count
        let ext = (path as NSString).pathExtension.lowercased()
        return (depth, extensions.firstIndex(of: ext) ?? extensions.count, path)
    }

    /// The number at the end of a file stem: 123 for "COCO_train2014_000000000123" or "123".
    static func trailingNumber(of stem: String) -> Int64? {
        let digits = stem.utf8.reversed().prefix(while: { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        return Int64(String(decoding: digits.reversed(), as: UTF8.self))
    }
}
