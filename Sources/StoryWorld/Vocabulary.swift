/// The closed vocabulary of StoryWorld: object kinds, colours, sizes, positions and backgrounds.
///
/// Attribute checkers read rendered pixels against these values and training scripts use the words,
/// so every case's raw value is the word used in captions and in the scene-graph metadata.

/// Where an object lives vertically: on the ground, or high in the sky (stars and balloons).
public enum Layer: String, Codable, Sendable, CaseIterable {
    case ground, sky
}

/// What an object is.
public enum ObjectKind: String, Codable, Sendable, CaseIterable, Comparable {
    case ball, box, tree, house, cat, car, star, balloon

    public static func < (a: ObjectKind, b: ObjectKind) -> Bool { a.rawValue < b.rawValue }

    /// Ground objects stand on the ground line; sky objects float above it.
    public var layer: Layer { self == .star || self == .balloon ? .sky : .ground }

    /// Trees and houses stay where they are: they never move or leave, and block travel.
    public var isMobile: Bool { self != .tree && self != .house }

    /// The verb a caption uses for this object moving ("rolls", "walks", ...).
    public var moveVerb: MoveVerb {
        switch self {
        case .ball: return .rolls
        case .cat: return .walks
        case .car: return .drives
        case .box: return .slides
        case .star, .balloon: return .floats
        case .tree, .house: return .moves
        }
    }

    /// The kind as a noun ("ball").
    public var word: String { rawValue }
}

/// Verbs of motion; each tells a reader which kinds could be moving.
public enum MoveVerb: String, Codable, Sendable, CaseIterable {
    case rolls, walks, drives, slides, floats, moves

    /// The kinds this verb can describe (what a reader learns from the verb alone).
    public var kinds: Set<ObjectKind> {
        switch self {
        case .rolls: return [.ball]
        case .walks: return [.cat]
        case .drives: return [.car]
        case .slides: return [.box]
        case .floats: return [.star, .balloon]
        case .moves: return Set(ObjectKind.allCases.filter(\.isMobile))
        }
    }
}

/// An object colour; RGB values are far apart (minimum pairwise distance is checked by a test).
public enum ObjectColour: String, Codable, Sendable, CaseIterable, Comparable {
    case red, orange, yellow, green, blue, purple, pink, white

    public static func < (a: ObjectColour, b: ObjectColour) -> Bool { a.rawValue < b.rawValue }

    /// The fill colour used by the renderer, sRGB 0–255.
    public var rgb: (r: UInt8, g: UInt8, b: UInt8) {
        switch self {
        case .red: return (220, 30, 30)
        case .orange: return (255, 140, 0)
        case .yellow: return (250, 225, 30)
        case .green: return (40, 170, 50)
        case .blue: return (30, 80, 235)
        case .purple: return (140, 40, 190)
        case .pink: return (255, 120, 205)
        case .white: return (250, 250, 250)
        }
    }

    public var word: String { rawValue }
}

/// An object's size. Big objects are about 1.8 times the linear size of small ones.
public enum ObjectSize: String, Codable, Sendable, CaseIterable, Comparable {
    case small, big

    public static func < (a: ObjectSize, b: ObjectSize) -> Bool { a == .small && b == .big }

    /// Linear scale factor applied to the object's footprint.
    public var scale: Double { self == .big ? 1.0 : 0.56 }

    public var word: String { rawValue }
}

/// An object's horizontal slot: the image is split into three equal columns.
public enum Position: String, Codable, Sendable, CaseIterable, Comparable {
    case left, middle, right

    public static func < (a: Position, b: Position) -> Bool { a.rank < b.rank }

    /// 0, 1, 2 from left to right.
    public var rank: Int {
        switch self {
        case .left: return 0
        case .middle: return 1
        case .right: return 2
        }
    }

    /// Column centre as a fraction of the image width.
    public var centreX: Double {
        switch self {
        case .left: return 1.0 / 6.0
        case .middle: return 0.5
        case .right: return 5.0 / 6.0
        }
    }

    /// "on the left", "in the middle", "on the right".
    public var phrase: String {
        switch self {
        case .left: return "on the left"
        case .middle: return "in the middle"
        case .right: return "on the right"
        }
    }

    /// "to the left", "to the middle", "to the right" (motion goal).
    public var goalPhrase: String { "to the \(rawValue)" }
}

/// The scene's setting: sky/ground split and decoration differ per background.
public enum Background: String, Codable, Sendable, CaseIterable, Comparable {
    case day, night, beach, snow, indoor, forest, city, desert

    public static func < (a: Background, b: Background) -> Bool { a.rawValue < b.rawValue }

    /// True for every background except `indoor`.
    public var isOutdoor: Bool { self != .indoor }

    /// Outdoor backgrounds lit by daylight (everything but night and indoor).
    public static let daylight: Set<Background> = [.day, .beach, .snow, .forest, .city, .desert]

    /// Locative phrases ("on a beach") used in captions; several for variety.
    public var locatives: [String] {
        switch self {
        case .day: return ["on a sunny meadow", "in a green field on a sunny day"]
        case .night: return ["at night", "in a field at night"]
        case .beach: return ["on a beach", "by the sea"]
        case .snow: return ["in the snow", "on a snowy field"]
        case .indoor: return ["in a room", "inside a house"]
        case .forest: return ["in a forest", "in the woods"]
        case .city: return ["in a city street", "in the city"]
        case .desert: return ["in a desert", "among sand dunes"]
        }
    }

    /// Noun phrases ("a beach") used as the subject of "X with ..." captions.
    public var nouns: [String] {
        switch self {
        case .day: return ["a sunny meadow", "a green field on a sunny day"]
        case .night: return ["a dark night", "a field at night"]
        case .beach: return ["a beach", "a sandy beach by the sea"]
        case .snow: return ["a snowy field", "a winter field covered in snow"]
        case .indoor: return ["a room", "a living room"]
        case .forest: return ["a forest", "a clearing in the woods"]
        case .city: return ["a city street", "a street in the city"]
        case .desert: return ["a desert", "a sandy desert"]
        }
    }

    public var word: String { rawValue }
}

import Stories

/// The whole vocabulary in one place, for attribute checkers and training scripts.
public enum WorldVocabulary {
    public static let kinds = ObjectKind.allCases
    public static let colours = ObjectColour.allCases
    public static let sizes = ObjectSize.allCases
    public static let positions = Position.allCases
    public static let backgrounds = Background.allCases
    public static let moveVerbs = MoveVerb.allCases

    /// The vocabulary as JSON (written as `vocabulary.json` next to generated collections): kinds with
    /// their layer and motion verb, colours with RGB, sizes with scale, positions with column centre,
    /// backgrounds with their caption phrases, and the world version.
    public static var json: JSONValue {
        func n(_ v: Double) -> JSONValue { .number(v) }
        return .object([
            "version": n(Double(StoryWorldGenerator.version)),
            "kinds": .array(kinds.map { .object(["name": .string($0.rawValue), "layer": .string($0.layer.rawValue),
                                                  "verb": .string($0.moveVerb.rawValue), "mobile": .bool($0.isMobile)]) }),
            "colours": .array(colours.map { c in
                .object(["name": .string(c.rawValue), "rgb": .array([n(Double(c.rgb.r)), n(Double(c.rgb.g)), n(Double(c.rgb.b))])]) }),
            "sizes": .array(sizes.map { .object(["name": .string($0.rawValue), "scale": n($0.scale)]) }),
            "positions": .array(positions.map { .object(["name": .string($0.rawValue), "x": n($0.centreX), "phrase": .string($0.phrase)]) }),
            "backgrounds": .array(backgrounds.map { b in
                .object(["name": .string(b.rawValue), "outdoor": .bool(b.isOutdoor),
                         "locatives": .array(b.locatives.map { .string($0) }), "nouns": .array(b.nouns.map { .string($0) })]) }),
        ])
    }
}
