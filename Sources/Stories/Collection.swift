import Foundation

/// One picture-and-text step of a story (VIST) or the single scene of a dialogue (VisDial).
public struct Panel: Codable, Sendable, Equatable {
    /// Image path relative to the collection root (`nil` when the panel has no image, e.g. a missing VIST photo).
    public var image: String?
    /// The panel's caption or story sentence.
    public var text: String
    /// Free-form ground truth (StoryWorld stores the scene graph here).
    public var metadata: JSONValue?

    public init(image: String?, text: String, metadata: JSONValue? = nil) {
        self.image = image
        self.text = text
        self.metadata = metadata
    }
}

/// A question/answer round of a dialogue.
public struct DialogueRound: Codable, Sendable, Equatable {
    public var question: String
    public var answer: String
    public init(question: String, answer: String) {
        self.question = question
        self.answer = answer
    }
}

/// An entry of a collection: a story of panels, or a dialogue about one image.
///
/// A dialogue has exactly one panel (its image and caption) and its rounds; a story has panels and no
/// rounds. Steps address either the entry as a whole or its panels one by one.
public struct Entry: Codable, Sendable, Equatable, Identifiable {
    public enum Kind: String, Codable, Sendable { case story, dialogue }

    public var id: String
    public var kind: Kind
    public var panels: [Panel]
    public var rounds: [DialogueRound]
    public var metadata: JSONValue?
    /// Problems found while importing (e.g. a VIST photo not found); shown in the gallery, never fatal.
    public var warnings: [String]

    public init(id: String, kind: Kind, panels: [Panel], rounds: [DialogueRound] = [],
                metadata: JSONValue? = nil, warnings: [String] = []) {
        self.id = id
        self.kind = kind
        self.panels = panels
        self.rounds = rounds
        self.metadata = metadata
        self.warnings = warnings
    }

    enum CodingKeys: String, CodingKey { case id, kind, panels, rounds, metadata, warnings }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        kind = try c.decode(Kind.self, forKey: .kind)
        panels = try c.decode([Panel].self, forKey: .panels)
        rounds = try c.decodeIfPresent([DialogueRound].self, forKey: .rounds) ?? []
        metadata = try c.decodeIfPresent(JSONValue.self, forKey: .metadata)
        warnings = try c.decodeIfPresent([String].self, forKey: .warnings) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(kind, forKey: .kind)
        try c.encode(panels, forKey: .panels)
        if !rounds.isEmpty { try c.encode(rounds, forKey: .rounds) }
        try c.encodeIfPresent(metadata, forKey: .metadata)
        if !warnings.isEmpty { try c.encode(warnings, forKey: .warnings) }
    }
}

/// A loaded collection: its entries and the root folder that image paths are relative to.
public struct StoryCollection: Sendable {
    public var name: String
    /// Absolute folder that panel image paths resolve against.
    public var root: URL
    public var entries: [Entry]

    public init(name: String, root: URL, entries: [Entry]) {
        self.name = name
        self.root = root
        self.entries = entries
    }
}
