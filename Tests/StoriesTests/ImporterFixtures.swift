import Foundation
@testable import Stories

/// Shared set-up for the importer tests: the hand-written dataset files under `Fixtures/importers`
/// and scratch folders of image files. The importers only index image file names (they never decode
/// the pixels), so the image files written here hold a few placeholder bytes.
enum ImporterFixtures {
    static func url(_ name: String) throws -> URL {
        guard let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw CollectionError(file: "Fixtures", "test fixtures folder missing from the bundle")
        }
        return folder.appendingPathComponent("importers").appendingPathComponent(name)
    }

    static func tempDir() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("importers-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes placeholder files at the given relative paths under `folder`, creating subfolders.
    static func touch(_ paths: [String], in folder: URL) throws {
        var made = Set<String>()
        for path in paths {
            let file = folder.appendingPathComponent(path)
            let parent = file.deletingLastPathComponent()
            if made.insert(parent.path).inserted {
                try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
            }
            try Data([0x89, 0x50, 0x4E, 0x47]).write(to: file)
        }
    }

    /// Writes `text` to `name` in `folder` and returns its URL.
    static func write(_ text: String, to name: String, in folder: URL) throws -> URL {
        let file = folder.appendingPathComponent(name)
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file
    }
}
