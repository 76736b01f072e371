import Foundation
import SwiftCSV

/// Imports a folder of images with a CSV of captions.
///
/// The CSV has a header row. Each row is a panel: the `image` column holds the image path relative to
/// the images folder and the `text` column its caption (both names configurable). With a `story`
/// column, rows sharing a value form one story, in order of first appearance, with panels in row order
/// or by an integer `order` column; without one, each row is a one-panel story with id `row-N`.
/// Other columns are kept as panel metadata. Quoted fields may hold commas, quotes (`""`) and newlines.
///
/// Image paths must stay inside the images folder (no absolute paths, no `..` above it) unless
/// `allowOutsideRoot`; a path that names no file is a warning on its entry, not a failure.
public enum FolderCSVImporter {
    /// A column the importer uses when the header has it, must find, or ignores.
    public enum OptionalColumn: Sendable, Equatable {
        case ifPresent(String)
        case required(String)
        case none
    }

    /// What to import and how.
    public struct Options: Sendable {
        /// The CSV file.
        public var csv: URL
        /// The folder image paths are relative to; it becomes the collection root.
        public var images: URL
        public var imageColumn: String
        public var textColumn: String
        /// Groups rows into stories.
        public var storyColumn: OptionalColumn
        /// Orders panels within a story (integers); row order without it.
        public var orderColumn: OptionalColumn
        /// The field separator.
        public var delimiter: Character
        /// Permit image paths that are absolute or climb above the images folder.
        public var allowOutsideRoot: Bool
        /// Import at most this many stories.
        public var limit: Int?

        public init(csv: URL, images: URL? = nil, imageColumn: String = "image", textColumn: String = "text",
                    storyColumn: OptionalColumn = .ifPresent("story"), orderColumn: OptionalColumn = .ifPresent("order"),
                    delimiter: Character = ",", allowOutsideRoot: Bool = false, limit: Int? = nil) {
            self.csv = csv
            self.images = images ?? csv.deletingLastPathComponent()
            self.imageColumn = imageColumn
            self.textColumn = textColumn
            self.storyColumn = storyColumn
            self.orderColumn = orderColumn
            self.delimiter = delimiter
            self.allowOutsideRoot = allowOutsideRoot
            self.limit = limit
        }
    }

    /// Reads the CSV and builds its stories.
    public static func load(_ options: Options) throws -> StoryCollection {
        let path = options.csv.path
        let data = try JSONFile.read(options.csv)
        guard let text = String(data: data, encoding: .utf8) else {
            throw CollectionError(file: path, "not UTF-8 text (expected a UTF-8 CSV file)")
        }
        let lines = try recordLines(of: text, file: path)
        let table: EnumeratedCSV
        do {
            table = try EnumeratedCSV(string: text, delimiter: .character(options.delimiter), loadColumns: false)
        } catch let error as CSVParseError {
            let reason: String
            switch error {
            case .generic(let message), .quotation(let message): reason = message
            }
            throw CollectionError(file: path, "malformed CSV: \(reason)")
        }

        let header = table.header.map { $0.trimmingCharacters(in: .whitespaces) }
        guard header.contains(where: { !$0.isEmpty }) else {
            throw CollectionError(file: path, line: 1, "empty header (expected column names, including \"\(options.imageColumn)\" and \"\(options.textColumn)\")")
        }
        func column(_ name: String) -> Int? { header.firstIndex(of: name) }
        func missing(_ name: String, _ role: String) -> CollectionError {
            CollectionError(file: path, line: 1, "no \(role) column \"\(name)\"; columns found: \(header.map { "\"\($0)\"" }.joined(separator: ", "))")
        }
        func optional(_ choice: OptionalColumn, _ role: String) throws -> Int? {
            switch choice {
            case .none: return nil
            case .ifPresent(let name): return column(name)
            case .required(let name):
                guard let i = column(name) else { throw missing(name, role) }
                return i
            }
        }
        guard let imageAt = column(options.imageColumn) else { throw missing(options.imageColumn, "image") }
        guard let textAt = column(options.textColumn) else { throw missing(options.textColumn, "text") }
        let storyAt = try optional(options.storyColumn, "story")
        let orderAt = try optional(options.orderColumn, "order")
        let used = Set([imageAt, textAt, storyAt, orderAt].compactMap { $0 })

        let root = options.images.standardizedFileURL
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir), isDir.boolValue else {
            throw CollectionError(file: root.path, "images folder not found")
        }

        var stories: [(id: String, rows: [(order: Int, line: Int, panel: Panel)])] = []
        var slot: [String: Int] = [:]
        for (r, fields) in table.rows.enumerated() {
            // Rows may be shorter than the header; absent cells read as empty.
            let row = header.indices.map { $0 < fields.count ? fields[$0] : "" }
            // SwiftCSV reads a blank line as one empty field; such rows are not panels.
            if row.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            let line = r + 1 < lines.count ? lines[r + 1] : (lines.last ?? 1)
            let image = row[imageAt].trimmingCharacters(in: .whitespaces)
            if !image.isEmpty && !options.allowOutsideRoot && !PathSafety.staysInside(relativePath: image) {
                throw CollectionError(file: path, line: line,
                    "image path \"\(image)\" leaves the images folder \(root.path) (expected a relative path inside it; set allow_outside_root: true under the workflow's collection: to permit)")
            }
            var order = r
            if let orderAt {
                let cell = row[orderAt].trimmingCharacters(in: .whitespaces)
                guard let value = Int(cell) else {
                    throw CollectionError(file: path, line: line, "column \"\(header[orderAt])\": expected an integer, found \"\(cell)\"")
                }
                order = value
            }
            let storyID: String
            if let storyAt {
                storyID = row[storyAt].trimmingCharacters(in: .whitespaces)
                guard !storyID.isEmpty else {
                    throw CollectionError(file: path, line: line, "column \"\(header[storyAt])\" is empty (expected a story id)")
                }
            } else {
                storyID = "row-\(r + 1)"
            }
            var extra: [String: JSONValue] = [:]
            for (i, name) in header.enumerated() where !used.contains(i) && !name.isEmpty {
                extra[name] = .string(row[i])
            }
            let panel = Panel(image: image.isEmpty ? nil : image, text: row[textAt], metadata: extra.isEmpty ? nil : .object(extra))
            if let k = slot[storyID] {
                stories[k].rows.append((order, line, panel))
            } else {
                slot[storyID] = stories.count
                stories.append((storyID, [(order, line, panel)]))
            }
        }

        var entries: [Entry] = []
        for story in stories {
            if let limit = options.limit, entries.count >= limit { break }
            // Stable: rows with equal order keep file order.
            let rows = story.rows.enumerated().sorted { ($0.element.order, $0.offset) < ($1.element.order, $1.offset) }.map(\.element)
            var warnings: [String] = []
            for (k, row) in rows.enumerated() {
                guard let image = row.panel.image else {
                    warnings.append("panel \(k + 1): no image given (line \(row.line))")
                    continue
                }
                let url = try PathSafety.resolve(image, in: root, allowOutside: options.allowOutsideRoot)
                if !FileManager.default.fileExists(atPath: url.path) {
                    warnings.append("panel \(k + 1): image \(image) not found in \(root.lastPathComponent)/")
                }
            }
            entries.append(Entry(id: story.id, kind: .story, panels: rows.map(\.panel),
                                 metadata: .object(["source": .string("csv")]), warnings: warnings))
        }
        let name = options.csv.deletingPathExtension().lastPathComponent
        return StoryCollection(name: name, root: root, entries: entries)
    }

    /// The 1-based line on which each CSV record starts (record 0 is the header), counting newlines
    /// inside quoted fields; also catches a quote left open, which the parser would silently accept.
    static func recordLines(of text: String, file: String) throws -> [Int] {
        var starts = [1]
        var line = 1
        var quoted = false
        var openedOn = 1
        for char in text {
            if char == "\"" {
                quoted.toggle()
                if quoted { openedOn = line }
            } else if char.isNewline {
                line += 1
                if !quoted { starts.append(line) }
            }
        }
        if quoted {
            throw CollectionError(file: file, line: openedOn, "malformed CSV: quoted field opened on line \(openedOn) is never closed")
        }
        return starts
    }
}
