/// What a reader knows about a scene after reading some utterances: the interpreter of StoryWorld's
/// caption semantics.
///
/// Every attribute is a set of values still possible. Pronouns resolve to the entity mentioned last;
/// definite descriptions to the one entity compatible with them. A referent that matches nothing
/// (reading a caption without its context) is accommodated as a new, partly known entity; a
/// description that matches several entities is ambiguous and recorded in ``ambiguities``.
/// ``isConsistent(with:)`` says whether a concrete scene graph could be the picture described.
public struct Knowledge: Sendable, Equatable {
    /// An entity the reader knows of, with the values each attribute may still take.
    public struct Entity: Sendable, Equatable {
        /// Stable within one `Knowledge` (creation order), so callers can map entities to ground truth.
        public var key: Int
        public var kinds: Set<ObjectKind>
        public var colours: Set<ObjectColour> = Set(ObjectColour.allCases)
        public var sizes: Set<ObjectSize> = Set(ObjectSize.allCases)
        public var positions: Set<Position> = Set(Position.allCases)

        init(key: Int, mention: Mention?) {
            self.key = key
            kinds = mention.map { [$0.kind] } ?? Set(ObjectKind.allCases)
            if let c = mention?.colour { colours = [c] }
            if let s = mention?.size { sizes = [s] }
            if let p = mention?.position { positions = [p] }
        }

        /// True when the entity could be described by `m`.
        func compatible(with m: Mention) -> Bool {
            kinds.contains(m.kind) && (m.colour.map { colours.contains($0) } ?? true)
                && (m.size.map { sizes.contains($0) } ?? true) && (m.position.map { positions.contains($0) } ?? true)
        }

        mutating func narrow(by m: Mention) {
            kinds = kinds.intersection([m.kind])
            if let c = m.colour { colours = colours.intersection([c]) }
            if let s = m.size { sizes = sizes.intersection([s]) }
            if let p = m.position { positions = positions.intersection([p]) }
        }

        /// True when every attribute has exactly one possible value.
        public var isDetermined: Bool { kinds.count == 1 && colours.count == 1 && sizes.count == 1 && positions.count == 1 }
    }

    public var backgrounds: Set<Background> = Set(Background.allCases)
    public var entities: [Entity] = []
    /// True once the reader knows every object in the picture is among `entities`.
    public var complete = false
    /// The key of the entity "it" refers to.
    public var salient: Int?
    /// Pairs of entity keys known to share a column (a star above a house).
    public var sameColumn: [(Int, Int)] = []
    /// Descriptions that matched several entities.
    public var ambiguities = 0
    /// Referents that matched no entity and were accommodated as new ones.
    public var accommodations = 0
    private var nextKey = 0

    public init() {}

    public static func == (a: Knowledge, b: Knowledge) -> Bool {
        a.backgrounds == b.backgrounds && a.entities == b.entities && a.complete == b.complete
            && a.salient == b.salient && a.sameColumn.map { [$0.0, $0.1] } == b.sameColumn.map { [$0.0, $0.1] }
    }

    /// The knowledge after reading `utterances` in order, starting from nothing.
    public static func reading(_ utterances: [Utterance]) -> Knowledge {
        var k = Knowledge()
        for u in utterances { k.apply(u) }
        return k
    }

    // MARK: resolution

    /// The key `referent` resolves to without changing anything, or nil when it would be accommodated
    /// or is ambiguous. The generator uses this to pick referring expressions that resolve correctly.
    public func resolve(_ referent: Referent) -> Int? {
        switch referent {
        case .pronoun:
            return salient
        case .definite(let m):
            let matches = entities.filter { $0.compatible(with: m) }
            return matches.count == 1 ? matches[0].key : nil
        }
    }

    private mutating func newEntity(_ mention: Mention?) -> Int {
        let key = nextKey
        nextKey += 1
        entities.append(Entity(key: key, mention: mention))
        return key
    }

    private func index(of key: Int) -> Int? { entities.firstIndex { $0.key == key } }

    /// Resolves a referent, accommodating it when nothing matches; returns the entity's index.
    private mutating func bind(_ referent: Referent) -> Int {
        switch referent {
        case .pronoun:
            if let s = salient, let i = index(of: s) { return i }
            accommodations += 1
            _ = newEntity(nil)
            return entities.count - 1
        case .definite(let m):
            let matches = entities.indices.filter { entities[$0].compatible(with: m) }
            if matches.count == 1 {
                entities[matches[0]].narrow(by: m)
                return matches[0]
            }
            if matches.count > 1 { ambiguities += 1 } else { accommodations += 1 }
            _ = newEntity(m)
            return entities.count - 1
        }
    }

    // MARK: update

    /// Updates the knowledge with one utterance.
    public mutating func apply(_ u: Utterance) {
        switch u {
        case .introduce(let places, let objects, let isComplete):
            backgrounds.formIntersection(places)
            var last: Int?
            for m in objects { last = newEntity(m) }
            salient = objects.count == 1 ? last : nil
            complete = isComplete
        case .move(let r, let verb, let p):
            let i = bind(r)
            entities[i].kinds.formIntersection(verb.kinds)
            entities[i].positions = [p]
            // Whatever it shared a column with, it has left that column.
            let key = entities[i].key
            sameColumn.removeAll { $0.0 == key || $0.1 == key }
            salient = key
        case .recolour(let r, let c):
            let i = bind(r)
            entities[i].colours = [c]
            salient = entities[i].key
        case .resize(let r, let s):
            let i = bind(r)
            entities[i].sizes = [s]
            salient = entities[i].key
        case .appear(let m, let placement):
            switch placement {
            case .at(let p):
                let key = newEntity(m)
                if let i = index(of: key) { entities[i].positions = [p] }
                salient = key
            case .above(let r):
                let below = bind(r)
                entities[below].kinds.formIntersection(ObjectKind.allCases.filter { $0.layer == .ground })
                let belowKey = entities[below].key
                let columns = entities[below].positions
                let key = newEntity(m)
                if let i = index(of: key) { entities[i].positions.formIntersection(columns) }
                sameColumn.append((key, belowKey))
                salient = key
            }
        case .leave(let r, let verb):
            let i = bind(r)
            let key = entities[i].key
            entities.remove(at: i)
            sameColumn.removeAll { $0.0 == key || $0.1 == key }
            salient = nil
            _ = verb   // the verb narrows the leaver's kind, but the leaver is no longer in the picture
        case .setting(let b, _):
            backgrounds = [b]
        case .fact(let r, let f), .confirm(let r, let f):
            let i = bind(r)
            switch f {
            case .colour(let c): entities[i].colours.formIntersection([c])
            case .notColour(let c): entities[i].colours.remove(c)
            case .size(let s): entities[i].sizes.formIntersection([s])
            case .position(let p): entities[i].positions.formIntersection([p])
            case .notPosition(let p): entities[i].positions.remove(p)
            }
            salient = entities[i].key
        case .place(let places):
            backgrounds.formIntersection(places)
        case .another(let m):
            salient = newEntity(m)
        case .nothingElse:
            complete = true
        }
    }

    // MARK: consistency

    /// True when `scene` could be the picture: its background is possible and its objects can be
    /// matched one-to-one to the known entities (all objects when `complete`), attribute by attribute,
    /// respecting shared columns.
    public func isConsistent(with scene: Scene) -> Bool {
        guard backgrounds.contains(scene.background) else { return false }
        if complete ? entities.count != scene.objects.count : entities.count > scene.objects.count { return false }
        var assigned = [Int](repeating: -1, count: entities.count)
        var used = [Bool](repeating: false, count: scene.objects.count)
        return match(0, scene, &assigned, &used)
    }

    private func match(_ e: Int, _ scene: Scene, _ assigned: inout [Int], _ used: inout [Bool]) -> Bool {
        if e == entities.count {
            for (a, b) in sameColumn {
                guard let ia = index(of: a), let ib = index(of: b) else { continue }
                if scene.objects[assigned[ia]].position != scene.objects[assigned[ib]].position { return false }
            }
            return true
        }
        let ent = entities[e]
        for (j, o) in scene.objects.enumerated() where !used[j] {
            guard ent.kinds.contains(o.kind), ent.colours.contains(o.colour), ent.sizes.contains(o.size),
                  ent.positions.contains(o.position) else { continue }
            used[j] = true
            assigned[e] = j
            if match(e + 1, scene, &assigned, &used) { return true }
            used[j] = false
        }
        return false
    }
}
