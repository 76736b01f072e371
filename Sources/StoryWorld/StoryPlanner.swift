/// A generated five-panel story: the ground-truth scene of each panel and its caption.
public struct StoryScript: Sendable, Equatable {
    public var scenes: [Scene]
    public var captions: [Caption]
}

/// Plans stories about persistent entities: panel 1 introduces the scene, panels 2–5 each narrate
/// one event (move, recolour, resize, appear, leave, change of setting) that refers back to
/// entities with pronouns or definite descriptions.
///
/// The planner reads its own captions with ``Knowledge`` as it goes and only uses a referring
/// expression that the reader resolves to the intended entity, so the five captions together
/// describe the last scene, while the last caption alone does not.
public enum StoryPlanner {
    public static let panels = 5
    /// Probability that a newly introduced object's size is left out of the caption (the picture shows it).
    public static let sizeOmission = 0.25

    /// The story for entry `index` under `seed` (a pure function of both).
    public static func story(seed: UInt64, index: Int) -> StoryScript {
        var rng = WorldRandom(seed: seed, stream: 1, index: UInt64(max(index, 0)))
        var state = PlannerState()
        var scene = initialScene(&rng, &state)
        var captions: [Caption] = []
        let intro = Utterance.introduce(places: [scene.background], objects: scene.objects.map { mention(of: $0, &rng) }, complete: true)
        state.read(intro, newIds: scene.objects.map(\.id))
        captions.append(CaptionGrammar.caption(intro, rng: &rng))
        var scenes = [scene]
        for _ in 1..<panels {
            // Every scene admits at least a recolour, so an event is always found.
            guard let (next, utterance, newIds) = event(scene, &rng, &state) else { break }
            state.read(utterance, newIds: newIds)
            captions.append(CaptionGrammar.caption(utterance, rng: &rng))
            scene = next
            scenes.append(scene)
        }
        return StoryScript(scenes: scenes, captions: captions)
    }

    /// The generator's view of the reader: knowledge so far and which entity key is which object id.
    struct PlannerState {
        var knowledge = Knowledge()
        var idOfKey: [Int: Int] = [:]
        var nextId = 1

        mutating func read(_ u: Utterance, newIds: [Int]) {
            let before = Set(knowledge.entities.map(\.key))
            knowledge.apply(u)
            let created = knowledge.entities.map(\.key).filter { !before.contains($0) }
            for (key, id) in zip(created, newIds) { idOfKey[key] = id }
        }

        func key(of id: Int) -> Int? { idOfKey.first { $0.value == id }?.key }
    }

    static func mention(of o: SceneObject, _ rng: inout WorldRandom) -> Mention {
        Mention(kind: o.kind, colour: o.colour, size: rng.chance(sizeOmission) ? nil : o.size, position: o.position)
    }

    static func initialScene(_ rng: inout WorldRandom, _ state: inout PlannerState) -> Scene {
        let background = rng.pick(Background.allCases)
        let count = 1 + rng.weighted([0.3, 0.5, 0.2])
        var scene = Scene(background: background, objects: [])
        for kind in rng.shuffled(ObjectKind.allCases).prefix(count) {
            let position = rng.pick(scene.freePositions(layer: kind.layer))
            scene.objects.append(SceneObject(id: state.nextId, kind: kind, colour: rng.pick(ObjectColour.allCases),
                                             size: rng.pick(ObjectSize.allCases), position: position))
            state.nextId += 1
        }
        return scene
    }

    /// A referring expression for object `id` that the reader resolves to it, or nil if none does.
    ///
    /// `plain` allows only "it" and "the KIND" (dialogue questions must not reveal attributes).
    static func refer(to id: Int, in scene: Scene, _ rng: inout WorldRandom, _ state: PlannerState, plain: Bool = false) -> Referent? {
        guard let key = state.key(of: id), let o = scene.objects.first(where: { $0.id == id }) else { return nil }
        let k = state.knowledge
        if k.resolve(.pronoun) == key, rng.chance(0.6) { return .pronoun }
        var options: [(Referent, Double)] = [(.definite(Mention(kind: o.kind)), 3)]
        if !plain {
            options += [(.definite(Mention(kind: o.kind, colour: o.colour)), 1),
                        (.definite(Mention(kind: o.kind, position: o.position)), 1)]
        }
        options = options.filter { k.resolve($0.0) == key }
        if options.isEmpty { return k.resolve(.pronoun) == key ? .pronoun : nil }
        return options[rng.weighted(options.map(\.1))].0
    }

    enum EventKind: CaseIterable { case move, recolour, resize, appear, leave, setting }

    /// One event: the next scene, its utterance, and ids of objects it introduces.
    static func event(_ scene: Scene, _ rng: inout WorldRandom, _ state: inout PlannerState) -> (Scene, Utterance, [Int])? {
        func targets(_ o: SceneObject) -> [Position] {
            scene.freePositions(layer: o.layer).filter { $0 != o.position }
        }
        let movers = scene.objects.filter { $0.kind.isMobile && !targets($0).isEmpty }
        let newKinds = ObjectKind.allCases.filter { k in
            !scene.objects.contains { $0.kind == k } && !scene.freePositions(layer: k.layer).isEmpty
        }
        let leavers = scene.objects.count >= 2 ? scene.objects.filter(\.kind.isMobile) : []
        let settings = nextSettings(scene)
        var weights: [Double] = [
            movers.isEmpty ? 0 : 3, 2, 1.5,
            scene.objects.count < Scene.maxObjects && !newKinds.isEmpty ? 1.5 : 0,
            leavers.isEmpty ? 0 : 1, settings.isEmpty ? 0 : 1.2,
        ]
        // Try event kinds in weighted order until one yields a resolvable caption.
        while weights.contains(where: { $0 > 0 }) {
            let choice = rng.weighted(weights)
            weights[choice] = 0
            var next = scene
            switch EventKind.allCases[choice] {
            case .move:
                let o = rng.pick(movers)
                guard let r = refer(to: o.id, in: scene, &rng, state) else { continue }
                let p = rng.pick(targets(o))
                next.objects = next.objects.map { $0.id == o.id ? with($0) { $0.position = p } : $0 }
                return (next, .move(r, o.kind.moveVerb, p), [])
            case .recolour:
                let o = rng.pick(scene.objects)
                guard let r = refer(to: o.id, in: scene, &rng, state) else { continue }
                let c = rng.pick(ObjectColour.allCases.filter { $0 != o.colour })
                next.objects = next.objects.map { $0.id == o.id ? with($0) { $0.colour = c } : $0 }
                return (next, .recolour(r, c), [])
            case .resize:
                let o = rng.pick(scene.objects)
                guard let r = refer(to: o.id, in: scene, &rng, state) else { continue }
                let s: ObjectSize = o.size == .big ? .small : .big
                next.objects = next.objects.map { $0.id == o.id ? with($0) { $0.size = s } : $0 }
                return (next, .resize(r, s), [])
            case .appear:
                let kind = rng.pick(newKinds)
                let free = scene.freePositions(layer: kind.layer)
                var o = SceneObject(id: state.nextId, kind: kind, colour: rng.pick(ObjectColour.allCases),
                                    size: rng.pick(ObjectSize.allCases), position: rng.pick(free))
                var placement = Placement.at(o.position)
                let hosts = scene.objects.filter { $0.layer == .ground && free.contains($0.position) }
                if kind.layer == .sky, !hosts.isEmpty, rng.chance(0.5) {
                    let host = rng.pick(hosts)
                    if let r = refer(to: host.id, in: scene, &rng, state) {
                        o.position = host.position
                        placement = .above(r)
                    }
                }
                state.nextId += 1
                next.objects.append(o)
                var m = mention(of: o, &rng)
                m.position = nil
                return (next, .appear(m, placement), [o.id])
            case .leave:
                let o = rng.pick(leavers)
                guard let r = refer(to: o.id, in: scene, &rng, state) else { continue }
                next.objects.removeAll { $0.id == o.id }
                return (next, .leave(r, o.kind.moveVerb), [])
            case .setting:
                next.background = rng.pick(settings)
                return (next, .setting(next.background, plural: scene.objects.count > 1), [])
            }
        }
        return nil
    }

    /// Backgrounds the setting can change to: night falls, the sun rises, snow starts, or (when every
    /// object can travel) everyone goes somewhere else.
    static func nextSettings(_ scene: Scene) -> [Background] {
        let b = scene.background
        var out: [Background] = []
        if Background.daylight.contains(b) { out.append(.night) }
        if b == .night { out.append(.day) }
        if [.day, .forest, .city, .night].contains(b) { out.append(.snow) }
        if scene.objects.allSatisfy(\.kind.isMobile) {
            out += [Background.beach, .indoor, .forest, .city, .desert, .day].filter { $0 != b && !out.contains($0) }
        }
        return out
    }

    static func with<T>(_ value: T, _ change: (inout T) -> Void) -> T {
        var v = value
        change(&v)
        return v
    }
}
