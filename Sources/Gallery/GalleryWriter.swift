import Foundation

/// Turns a ``GalleryDocument`` into a static folder that opens from `file://` with no network:
///
///     index.html            entries with thumbnails, filter and sort
///     report.html           the run report with charts
///     entries/<name>.html   one page per story or dialogue
///     media/<hash>.<ext>    every shown image, hard-linked or copied
///     assets/gallery.css, assets/gallery.js
///
/// All links are relative, so the folder can be zipped and moved.
public enum GalleryWriter {
    /// File that marks a folder as a Storyloom gallery, so a refresh never cleans a foreign folder.
    public static let markerName = ".storyloom-gallery"

    /// Writes index.html, report.html, one page per entry, media/ and assets into `folder`
    /// (created or refreshed; stale pages from earlier renders removed). Returns the index URL.
    ///
    /// Throws ``GalleryError`` when the folder cannot be created or written, or when it exists,
    /// is not empty and is not a gallery. Missing media files are shown as "missing image".
    public static func write(_ document: GalleryDocument, to folder: URL) throws -> URL {
        let folder = folder.standardizedFileURL
        try prepare(folder)
        let entriesFolder = folder.appendingPathComponent("entries")
        let mediaFolder = folder.appendingPathComponent("media")
        let assetsFolder = folder.appendingPathComponent("assets")
        for sub in [entriesFolder, mediaFolder, assetsFolder] { try makeFolder(sub) }

        let media = MediaCatalog(mediaFolder: mediaFolder)
        let rootCells = CellView(media: media, location: .root)
        let entryCells = CellView(media: media, location: .entries)
        let names = SafeName.entryNames(document.entries.map(\.id))
        for (index, entry) in document.entries.enumerated() {
            let page = EntryPage(document: document, entry: entry,
                                 previous: index > 0 ? names[index - 1] : nil,
                                 next: index + 1 < names.count ? names[index + 1] : nil,
                                 cells: entryCells)
            try save(try page.render(), to: entriesFolder.appendingPathComponent(names[index] + ".html"))
        }
        try save(try ReportPage(document: document, cells: rootCells).render(),
                 to: folder.appendingPathComponent("report.html"))
        try save(GalleryAssets.css, to: assetsFolder.appendingPathComponent("gallery.css"))
        try save(GalleryAssets.javascript, to: assetsFolder.appendingPathComponent("gallery.js"))
        let index = folder.appendingPathComponent("index.html")
        try save(try IndexPage(document: document, pageNames: names, cells: rootCells).render(), to: index)

        try removeStale(in: entriesFolder, keeping: Set(names.map { $0 + ".html" }))
        try removeStale(in: mediaFolder, keeping: media.names)
        return index
    }

    /// Creates the folder, or checks that an existing one is empty or an earlier gallery.
    private static func prepare(_ folder: URL) throws {
        let fm = FileManager.default
        var isFolder: ObjCBool = false
        if fm.fileExists(atPath: folder.path, isDirectory: &isFolder) {
            guard isFolder.boolValue else {
                throw GalleryError("\(folder.path) exists and is not a folder")
            }
            let contents: [String]
            do { contents = try fm.contentsOfDirectory(atPath: folder.path) } catch {
                throw GalleryError("cannot list \(folder.path): \(error.localizedDescription)")
            }
            if !contents.isEmpty && !contents.contains(markerName) {
                throw GalleryError("\(folder.path) is not empty and is not a Storyloom gallery "
                    + "(no \(markerName) file); choose an empty or new folder")
            }
        } else {
            try makeFolder(folder)
        }
        try save("Storyloom gallery: this folder is rewritten on each render.\n",
                 to: folder.appendingPathComponent(markerName))
    }

    private static func makeFolder(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw GalleryError("cannot create folder \(url.path): \(error.localizedDescription)")
        }
    }

    private static func save(_ text: String, to url: URL) throws {
        do {
            try Data(text.utf8).write(to: url, options: .atomic)
        } catch {
            throw GalleryError("cannot write \(url.path): \(error.localizedDescription)")
        }
    }

    /// Removes files of an earlier render that this render did not write.
    private static func removeStale(in folder: URL, keeping: Set<String>) throws {
        let fm = FileManager.default
        let names: [String]
        do { names = try fm.contentsOfDirectory(atPath: folder.path) } catch {
            throw GalleryError("cannot list \(folder.path): \(error.localizedDescription)")
        }
        for name in names where !keeping.contains(name) {
            let url = folder.appendingPathComponent(name)
            do { try fm.removeItem(at: url) } catch {
                throw GalleryError("cannot remove stale \(url.path): \(error.localizedDescription)")
            }
        }
    }
}
