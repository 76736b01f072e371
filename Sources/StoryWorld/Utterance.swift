/// The structured meaning behind every StoryWorld caption and dialogue answer.
///
/// Captions are generated from utterances (see ``CaptionGrammar``), and the utterance is kept so a
/// reader — ``Knowledge`` — can interpret a caption with or without its context. That is how the
/// coreference property is measured: the last caption alone leaves the picture open, the whole story
/// pins it down.

/// A (possibly partial) description of an object: "a small red ball on the left", "the cat", "a house".
public struct Mention: Codable, Sendable, Equatable, Hashable {
    public var kind: ObjectKind
    public var colour: ObjectColour?
    public var size: ObjectSize?
    public var position: Position?

    public init(kind: ObjectKind, colour: ObjectColour? = nil, size: ObjectSize? = nil, position: Position? = nil) {
        self.kind = kind
        self.colour = colour
        self.size = size
        self.position = position
    }
}

/// How an utterance refers back to an entity already in the story.
public enum Referent: Codable, Sendable, Equatable, Hashable {
    /// "it": the entity mentioned last.
    case pronoun
    /// "the ball", "the red ball", "the ball on the left": the one entity matching the description.
    case definite(Mention)
}

/// Where a new object appears.
public enum Placement: Codable, Sendable, Equatable, Hashable {
    case at(Position)
    /// In the sky, in the same column as a ground entity ("a star appears above it").
    case above(Referent)
}

/// An attribute fact learnt in a dialogue round ("It is red.", "No." to "Is it on the left?").
public enum Fact: Codable, Sendable, Equatable, Hashable {
    case colour(ObjectColour), notColour(ObjectColour)
    case size(ObjectSize)
    case position(Position), notPosition(Position)
}

/// One caption's or dialogue round's meaning.
public enum Utterance: Codable, Sendable, Equatable, Hashable {
    /// Opens a story or dialogue: where (any of `places`), which objects, and whether that is all of them.
    case introduce(places: [Background], objects: [Mention], complete: Bool)
    case move(Referent, MoveVerb, Position)
    case recolour(Referent, ObjectColour)
    case resize(Referent, ObjectSize)
    case appear(Mention, Placement)
    /// The entity leaves the picture; the verb ("rolls away") hints at its kind.
    case leave(Referent, MoveVerb)
    /// The setting changes for everyone ("Night falls.", "They go to the beach.").
    case setting(Background, plural: Bool)
    /// A dialogue answer about one entity.
    case fact(Referent, Fact)
    /// A dialogue answer narrowing the place to any of `places` ("Is it day or night?" "Night.").
    case place([Background])
    /// "Is there anything else?" "Yes, a small house on the right."
    case another(Mention)
    /// "Is there anything else?" "No, nothing else."
    case nothingElse
    /// A round that confirms what is already known ("So the ball is red?" "Yes.").
    case confirm(Referent, Fact)
}
