import Foundation
import Imaging
import Stories

/// What to generate.
public struct WorldOptions: Sendable {
    public var seed: UInt64
    public var stories: Int
    public var dialogues: Int
    /// Model-resolution image size (square), written under `images/`.
    public var imageSize: Int = 64
    /// Display-resolution image size, written under `display/`; nil: no display images.
    public var displaySize: Int? = 256
    /// false: metadata and text only (panels carry no image paths and nothing is rendered).
    public var renderImages: Bool = true

    public init(seed: UInt64, stories: Int, dialogues: Int) {
        self.seed = seed
        self.stories = stories
        self.dialogues = dialogues
    }
}

/// What ``StoryWorldGenerator/generate(_:into:)`` wrote.
public struct WorldSummary: Sendable {
    public var stories: Int
    public var dialogues: Int
    /// Model-resolution PNGs written (one per panel; display copies are not counted).
    public var images: Int
    public var folder: URL
}

/// The one error type of StoryWorld: options it cannot render, scene metadata it cannot read (with the
/// key), images the attribute checker cannot read.
public struct WorldError: Error, CustomStringConvertible, Sendable {
    public var key: String?
    public var message: String

    public init(_ message: String) { self.message = message }

    /// A scene-graph key in a panel's metadata.
    public init(key: String, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String {
        key.map { "scene metadata key \"\($0)\": \(message)" } ?? message
    }
}

/// Generates StoryWorld collections: stories and dialogues as native collection entries, rendered to PNG.
///
/// Entry `i` of each kind depends only on `(seed, i)`, so the first 100 stories of a 10,000-story
/// set equal a 100-story set with the same seed; the output is byte-identical for the same seed and
/// ``version``.
public enum StoryWorldGenerator {
    /// Bumped whenever the same seed would produce different entries or pixels.
    public static let version: Int = 1

    /// The id of story `index` (0-based): "story-00001" for index 0.
    public static func storyID(_ index: Int) -> String { "story-" + padded(index + 1) }
    /// The id of dialogue `index` (0-based): "dialogue-00001" for index 0.
    public static func dialogueID(_ index: Int) -> String { "dialogue-" + padded(index + 1) }

    static func padded(_ n: Int) -> String {
        let s = String(n)
        return s.count >= 5 ? s : String(repeating: "0", count: 5 - s.count) + s
    }

    /// Generates entries (no I/O) — used by tests and by training-data scripts.
    public static func entries(_ options: WorldOptions) -> [Entry] {
        (0..<max(options.stories, 0)).map { storyEntry(options, $0) }
            + (0..<max(options.dialogues, 0)).map { dialogueEntry(options, $0) }
    }

    /// The story entry for index `index`, with its panels' scene graphs in metadata.
    public static func storyEntry(_ options: WorldOptions, _ index: Int) -> Entry {
        let script = StoryPlanner.story(seed: options.seed, index: index)
        let id = storyID(index)
        let panels = zip(script.scenes, script.captions).enumerated().map { (i, pair) in
            panel(options, name: "\(id)-\(i + 1)", scene: pair.0, text: pair.1.text, template: pair.1.template)
        }
        return Entry(id: id, kind: .story, panels: panels, metadata: entryMetadata(options, index))
    }

    /// The dialogue entry for index `index`: one panel and its rounds.
    public static func dialogueEntry(_ options: WorldOptions, _ index: Int) -> Entry {
        let script = DialoguePlanner.dialogue(seed: options.seed, index: index)
        let id = dialogueID(index)
        let p = panel(options, name: id, scene: script.scene, text: script.caption.text, template: script.caption.template)
        var meta = entryMetadata(options, index)
        if case .object(var o) = meta {
            o["templates"] = .array(script.turns.map { .string($0.template) })
            meta = .object(o)
        }
        return Entry(id: id, kind: .dialogue, panels: [p],
                     rounds: script.turns.map { DialogueRound(question: $0.question, answer: $0.answer) }, metadata: meta)
    }

    static func entryMetadata(_ options: WorldOptions, _ index: Int) -> JSONValue {
        // The seed is a string: JSON numbers are doubles and would lose bits above 2^53.
        .object(["world": .string("storyworld"), "version": .number(Double(version)),
                 "seed": .string(String(options.seed)), "index": .number(Double(index))])
    }

    static func panel(_ options: WorldOptions, name: String, scene: Scene, text: String, template: String) -> Panel {
        guard case .object(var meta) = scene.json else { return Panel(image: nil, text: text, metadata: scene.json) }
        meta["template"] = .string(template)
        var image: String?
        if options.renderImages {
            image = "images/\(name).png"
            if options.displaySize != nil { meta["display"] = .string("display/\(name).png") }
        }
        return Panel(image: image, text: text, metadata: .object(meta))
    }

    /// Generates and writes a native collection folder (collection.jsonl, images/, display/).
    ///
    /// PNGs are written with ``PNGCodec/encode(_:)``; existing files of the same names are replaced.
    public static func generate(_ options: WorldOptions, into folder: URL) throws -> WorldSummary {
        guard options.stories >= 0, options.dialogues >= 0 else {
            throw WorldError("storyworld: story and dialogue counts must not be negative (got \(options.stories) and \(options.dialogues))")
        }
        guard (8...4096).contains(options.imageSize) else {
            throw WorldError("storyworld: imageSize must be between 8 and 4096 pixels (got \(options.imageSize))")
        }
        if let d = options.displaySize, !(8...4096).contains(d) {
            throw WorldError("storyworld: displaySize must be between 8 and 4096 pixels (got \(d))")
        }
        let entries = entries(options)
        var images = 0
        if options.renderImages {
            let fm = FileManager.default
            try fm.createDirectory(at: folder.appendingPathComponent("images"), withIntermediateDirectories: true)
            if options.displaySize != nil {
                try fm.createDirectory(at: folder.appendingPathComponent("display"), withIntermediateDirectories: true)
            }
            for entry in entries {
                for (i, p) in entry.panels.enumerated() {
                    guard let path = p.image, let meta = p.metadata else { continue }
                    let scene: Scene
                    do { scene = try Scene(metadata: meta) } catch {
                        throw WorldError("storyworld: \(entry.id) panel \(i + 1): \(error)")
                    }
                    try write(PNGCodec.encode(SceneRenderer.render(scene, size: options.imageSize)), folder, path)
                    images += 1
                    if let size = options.displaySize, let display = meta["display"]?.stringValue {
                        try write(PNGCodec.encode(SceneRenderer.render(scene, size: size)), folder, display)
                    }
                }
            }
        }
        try NativeCollection.write(entries, to: folder)
        try writeVocabulary(folder)
        return WorldSummary(stories: max(options.stories, 0), dialogues: max(options.dialogues, 0), images: images, folder: folder)
    }

    /// Writes `vocabulary.json` (sorted keys, byte-stable) for attribute checkers and training scripts.
    static func writeVocabulary(_ folder: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        try write(try encoder.encode(WorldVocabulary.json), folder, "vocabulary.json")
    }

    static func write(_ data: Data, _ folder: URL, _ path: String) throws {
        let url = folder.appendingPathComponent(path)
        do { try data.write(to: url) } catch {
            throw WorldError("storyworld: cannot write \(url.path): \(error.localizedDescription)")
        }
    }
}
