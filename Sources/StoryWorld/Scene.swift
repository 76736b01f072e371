import Stories

/// One object of a scene: an entity with its attributes at one moment.
public struct SceneObject: Codable, Sendable, Equatable, Hashable {
    /// The entity id, stable across the panels of a story (1-based within an entry).
    public var id: Int
    public var kind: ObjectKind
    public var colour: ObjectColour
    public var size: ObjectSize
    public var position: Position

    public init(id: Int, kind: ObjectKind, colour: ObjectColour, size: ObjectSize, position: Position) {
        self.id = id
        self.kind = kind
        self.colour = colour
        self.size = size
        self.position = position
    }

    /// Ground or sky, from the kind.
    public var layer: Layer { kind.layer }

    /// The object's scene-graph metadata (kind, colour, size, position, layer, id).
    public var json: JSONValue {
        .object([
            "id": .number(Double(id)),
            "kind": .string(kind.rawValue),
            "colour": .string(colour.rawValue),
            "size": .string(size.rawValue),
            "position": .string(position.rawValue),
            "layer": .string(layer.rawValue),
        ])
    }
}

/// A scene graph: a background and one to three objects.
///
/// Layout rule (keeps objects apart): each of the three columns holds at most one ground object and
/// at most one sky object; a sky object sharing a column with a ground object is drawn above it.
public struct Scene: Codable, Sendable, Equatable, Hashable {
    public var background: Background
    public var objects: [SceneObject]

    public init(background: Background, objects: [SceneObject]) {
        self.background = background
        self.objects = objects
    }

    /// The most objects a scene holds.
    public static let maxObjects = 3

    /// True when no object other than `excluding` occupies `position` in `layer`.
    public func isFree(_ position: Position, layer: Layer, excluding id: Int? = nil) -> Bool {
        !objects.contains { $0.position == position && $0.layer == layer && $0.id != id }
    }

    /// Positions free in `layer`.
    public func freePositions(layer: Layer, excluding id: Int? = nil) -> [Position] {
        Position.allCases.filter { isFree($0, layer: layer, excluding: id) }
    }

    /// True when the layout rule holds (distinct slots, 1–3 objects, distinct ids).
    public var isValid: Bool {
        guard (1...Scene.maxObjects).contains(objects.count) else { return false }
        var slots = Set<String>()
        var ids = Set<Int>()
        for o in objects {
            guard slots.insert("\(o.layer.rawValue)-\(o.position.rawValue)").inserted,
                  ids.insert(o.id).inserted else { return false }
        }
        return true
    }

    /// The scene with ids dropped and objects in a canonical order: two scenes with the same
    /// `graphKey` look the same.
    public var graphKey: String {
        let parts = objects.map { "\($0.layer.rawValue):\($0.position.rawValue):\($0.size.rawValue):\($0.colour.rawValue):\($0.kind.rawValue)" }
        return background.rawValue + "|" + parts.sorted().joined(separator: ",")
    }

    /// Objects in drawing order: sky objects first (behind), then ground objects left to right.
    public var drawingOrder: [SceneObject] {
        objects.sorted { a, b in
            if a.layer != b.layer { return a.layer == .sky }
            return a.position < b.position
        }
    }

    /// The scene-graph metadata stored in `Panel.metadata` (plus `display` added by the generator).
    public var json: JSONValue {
        .object([
            "background": .string(background.rawValue),
            "objects": .array(objects.map(\.json)),
        ])
    }

    /// Reads a scene back from panel metadata, naming the key that is missing or wrong.
    public init(metadata: JSONValue) throws {
        guard let bgWord = metadata["background"]?.stringValue else {
            throw WorldError(key: "background", "expected a string")
        }
        guard let bg = Background(rawValue: bgWord) else {
            throw WorldError(key: "background", "unknown background \"\(bgWord)\" (expected one of \(Background.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let list = metadata["objects"]?.arrayValue else {
            throw WorldError(key: "objects", "expected an array")
        }
        var objects: [SceneObject] = []
        for (i, item) in list.enumerated() {
            func word<T: RawRepresentable>(_ key: String, _ type: T.Type) throws -> T where T.RawValue == String {
                guard let w = item[key]?.stringValue else {
                    throw WorldError(key: "objects[\(i)].\(key)", "expected a string")
                }
                guard let v = T(rawValue: w) else {
                    throw WorldError(key: "objects[\(i)].\(key)", "unknown value \"\(w)\"")
                }
                return v
            }
            guard let id = item["id"]?.doubleValue, id == id.rounded(), abs(id) < 1e9 else {
                throw WorldError(key: "objects[\(i)].id", "expected an integer")
            }
            objects.append(SceneObject(id: Int(id), kind: try word("kind", ObjectKind.self),
                                       colour: try word("colour", ObjectColour.self),
                                       size: try word("size", ObjectSize.self),
                                       position: try word("position", Position.self)))
        }
        self.init(background: bg, objects: objects)
    }
}

