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
        var found: [(path: String, stem: String, depth: Int, rank: Int)] = []
        try Self.scan(self.folder.path, prefix: "", depth: 0, into: &found)
        // Sorted (shallower, preferred extension, name) so that the choice between two files with the same
        // id does not depend on listing order.
        found.sort { ($0.depth, $0.rank, $0.path) < ($1.depth, $1.rank, $1.path) }
        for file in found {
            if byStem[file.stem] == nil { byStem[file.stem] = file.path }
            if let number = Self.trailingNumber(of: file.stem), byNumber[number] == nil { byNumber[number] = file.path }
        }
        count = found.count
    }

    /// Lists `folder` and its subfolders. Names with an image extension are taken as files without a
    /// stat call each (a dataset folder holds tens of thousands); only other names are checked for folders.
    private static func scan(_ folder: String, prefix: String, depth: Int,
                             into found: inout [(path: String, stem: String, depth: Int, rank: Int)]) throws {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw CollectionError(file: folder, "cannot list the images folder (\(error.localizedDescription))")
        }
        for name in names where !name.hasPrefix(".") {
            if let dot = name.lastIndex(of: "."),
               let rank = extensions.firstIndex(of: name[name.index(after: dot)...].lowercased()) {
                found.append((prefix + name, String(name[..<dot]), depth, rank))
                continue
            }
            var isDir: ObjCBool = false
            let path = folder + "/" + name
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
                try scan(path, prefix: prefix + name + "/", depth: depth + 1, into: &found)
            }
        }
    }

    /// The image named `id` plus an image extension (VIST photo ids).
    func path(stem id: String) -> String? { byStem[id] }

    /// The image whose name ends in the number `id` (VisDial / COCO image ids).
    func path(number id: Int64) -> String? { byNumber[id] }

    /// A short name of the folder for warnings, e.g. "images/".
    var displayName: String { folder.lastPathComponent + "/" }

    /// The number at the end of a file stem: 123 for "COCO_train2014_000000000123" or "123".
    static func trailingNumber(of stem: String) -> Int64? {
        let digits = stem.utf8.reversed().prefix(while: { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        return Int64(String(decoding: digits.reversed(), as: UTF8.self))
    }
}
