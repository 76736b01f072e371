import Foundation

/// The one entry point the workflow layer calls to load a collection of any supported kind.
///
/// Options are the workflow's string parameters. File and folder options are resolved against `base`
/// (the workflow file's folder) and may be absolute: they are the author's own configuration.
/// `allowOutsideRoot` governs paths found *inside* the data (native image paths, CSV image cells).
///
/// | kind | options |
/// | --- | --- |
/// | `native` | `path` (folder with `collection.jsonl`, or the `.jsonl` file) |
/// | `vist-sis`, `vist-dii` | `annotations`, `images`, `use_original_text` (bool), `limit` |
/// | `visdial` | `annotations`, `images`, `question_mark` (bool, default true), `limit` |
/// | `csv` | `annotations` (the CSV), `images` (default: the CSV's folder), `image_column`, `text_column`, `story_column`, `order_column`, `delimiter`, `limit` |
public enum CollectionImporter {
    /// The collection kinds `load` accepts.
    public static let kinds: [String] = ["native", "vist-sis", "vist-dii", "visdial", "csv"]

    /// The options each kind accepts, required ones first.
    public static let optionNames: [String: (required: [String], optional: [String])] = [
        "native": (["path"], []),
        "vist-sis": (["annotations", "images"], ["use_original_text", "limit"]),
        "vist-dii": (["annotations", "images"], ["use_original_text", "limit"]),
        "visdial": (["annotations", "images"], ["question_mark", "limit"]),
        "csv": (["annotations"], ["images", "image_column", "text_column", "story_column", "order_column", "delimiter", "limit"]),
    ]

    /// Loads a collection.
    ///
    /// - Parameters:
    ///   - kind: one of ``kinds``.
    ///   - options: the kind's options (see the table above); unknown or missing ones are errors.
    ///   - base: the folder relative option paths resolve against.
    ///   - allowOutsideRoot: permit image paths in the data that leave the collection root.
    public static func load(kind: String, options: [String: String], base: URL, allowOutsideRoot: Bool) throws -> StoryCollection {
        guard let names = optionNames[kind] else {
            throw CollectionError(importer: kind, "unknown collection kind \"\(kind)\"; valid kinds: \(kinds.joined(separator: ", "))")
        }
        let valid = names.required + names.optional
        for key in options.keys.sorted() where !valid.contains(key) {
            throw CollectionError(importer: kind, "unknown option \"\(key)\"; valid options: \(valid.joined(separator: ", "))")
        }
        for key in names.required where (options[key] ?? "").isEmpty {
            throw CollectionError(importer: kind, "missing option \"\(key)\" (required: \(names.required.joined(separator: ", ")))")
        }
        let reader = OptionReader(kind: kind, options: options, base: base)

        switch kind {
        case "native":
            return try NativeCollection.read(at: try reader.required("path"), allowOutsideRoot: allowOutsideRoot)
        case "vist-sis", "vist-dii":
            return try VISTImporter.load(.init(
                annotations: try reader.required("annotations"), images: try reader.required("images"),
                tier: kind == "vist-sis" ? .storyInSequence : .descriptionsInIsolation,
                useOriginalText: try reader.bool("use_original_text") ?? false,
                limit: try reader.count("limit")))
        case "visdial":
            return try VisDialImporter.load(.init(
                annotations: try reader.required("annotations"), images: try reader.required("images"),
                appendQuestionMark: try reader.bool("question_mark") ?? true,
                limit: try reader.count("limit")))
        default: // "csv"
            var csv = FolderCSVImporter.Options(csv: try reader.required("annotations"), images: reader.url("images"),
                                                allowOutsideRoot: allowOutsideRoot, limit: try reader.count("limit"))
            if let name = options["image_column"] { csv.imageColumn = name }
            if let name = options["text_column"] { csv.textColumn = name }
            // Named explicitly, a grouping column must exist; an empty value turns it off.
            if let name = options["story_column"] { csv.storyColumn = name.isEmpty ? .none : .required(name) }
            if let name = options["order_column"] { csv.orderColumn = name.isEmpty ? .none : .required(name) }
            if let d = options["delimiter"] { csv.delimiter = try reader.delimiter(d) }
            return try FolderCSVImporter.load(csv)
        }
    }
}

/// Typed access to the string options, with errors naming the option and what it expects.
struct OptionReader {
    var kind: String
    var options: [String: String]
    var base: URL

    /// The option as a file URL (``UserPath``: relative to `base`, `~` expanded); nil when absent.
    func url(_ key: String) -> URL? {
        guard let value = options[key], !value.isEmpty else { return nil }
        return UserPath.resolve(value, relativeTo: base)
    }

    /// A required path option as a URL.
    func required(_ key: String) throws -> URL {
        guard let url = url(key) else { throw CollectionError(importer: kind, "missing option \"\(key)\"") }
        return url
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = options[key] else { return nil }
        switch value.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw CollectionError(importer: kind, "option \"\(key)\": expected true or false, found \"\(value)\"")
        }
    }

    /// A positive integer.
    func count(_ key: String) throws -> Int? {
        guard let value = options[key] else { return nil }
        guard let n = Int(value.trimmingCharacters(in: .whitespaces)), n > 0 else {
            throw CollectionError(importer: kind, "option \"\(key)\": expected a positive integer, found \"\(value)\"")
        }
        return n
    }

    /// One character, or the word "tab".
    func delimiter(_ value: String) throws -> Character {
        if value == "tab" || value == "\\t" { return "\t" }
        guard value.count == 1, let c = value.first, c != "\"", !c.isNewline else {
            throw CollectionError(importer: kind, "option \"delimiter\": expected one character (or \"tab\"), found \"\(value)\"")
        }
        return c
    }
}
