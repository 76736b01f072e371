/// One question/answer round with its meaning.
public struct DialogueTurn: Sendable, Equatable {
    public var question: String
    public var answer: String
    /// "family.variant" of the question template.
    public var template: String
    /// What the answer tells the reader.
    public var utterance: Utterance
}

/// A generated VisDial-style dialogue: one scene, a deliberately partial caption and its rounds.
public struct DialogueScript: Sendable, Equatable {
    public var scene: Scene
    public var caption: Caption
    public var turns: [DialogueTurn]
}

/// Plans dialogues whose rounds keep adding information about one scene.
///
/// The caption names one object and at most whether the place is inside or outside. Each round asks
/// about something the reader (``Knowledge``) does not know yet — an attribute of a known object, the
/// place, or whether there is anything else — so reading more rounds narrows down the scene. Only when
/// everything is known does a round merely confirm a fact.
public enum DialoguePlanner {
    public static let rounds = 10

    /// The dialogue for entry `index` under `seed` (a pure function of both).
    public static func dialogue(seed: UInt64, index: Int) -> DialogueScript {
        var rng = WorldRandom(seed: seed, stream: 2, index: UInt64(max(index, 0)))
        var state = StoryPlanner.PlannerState()
        let background = rng.pick(Background.allCases)
        let count = 1 + rng.weighted([0.1, 0.4, 0.5])
        var scene = Scene(background: background, objects: [])
        for kind in rng.shuffled(ObjectKind.allCases).prefix(count) {
            scene.objects.append(SceneObject(id: state.nextId, kind: kind, colour: rng.pick(ObjectColour.allCases),
                                             size: rng.pick(ObjectSize.allCases),
                                             position: rng.pick(scene.freePositions(layer: kind.layer))))
            state.nextId += 1
        }
        let first = rng.pick(scene.objects)
        var places = Background.allCases
        if rng.chance(0.7) { places = background.isOutdoor ? places.filter(\.isOutdoor) : [.indoor] }
        let intro = Utterance.introduce(places: places, objects: [Mention(kind: first.kind)], complete: false)
        state.read(intro, newIds: [first.id])
        let caption = CaptionGrammar.caption(intro, rng: &rng)
        var turns: [DialogueTurn] = []
        for _ in 0..<rounds {
            let (turn, newIds) = nextTurn(scene, &rng, state)
            state.read(turn.utterance, newIds: newIds)
            turns.append(turn)
        }
        return DialogueScript(scene: scene, caption: caption, turns: turns)
    }

    enum Question {
        case colour(SceneObject), isColour(SceneObject, ObjectColour)
        case size(SceneObject), isBig(SceneObject)
        case position(SceneObject), isAt(SceneObject, Position)
        case dayOrNight, wherePlace, indoors, anythingElse
    }

    /// Candidate questions about what the reader does not know yet, with weights.
    static func questions(_ scene: Scene, _ state: StoryPlanner.PlannerState, _ rng: inout WorldRandom) -> [(Question, Double)] {
        let k = state.knowledge
        var out: [(Question, Double)] = []
        for e in k.entities {
            guard let id = state.idOfKey[e.key], let o = scene.objects.first(where: { $0.id == id }) else { continue }
            if e.colours.count > 1 { out += [(.colour(o), 1), (.isColour(o, rng.pick(e.colours.sorted())), 0.5)] }
            if e.sizes.count > 1 { out += [(.size(o), 1), (.isBig(o), 0.4)] }
            if e.positions.count > 1 { out += [(.position(o), 1), (.isAt(o, rng.pick(e.positions.sorted())), 0.5)] }
        }
        let b = k.backgrounds
        if b.count > 1 {
            if b.allSatisfy(\.isOutdoor), b.contains(.night), !b.isDisjoint(with: Background.daylight) { out.append((.dayOrNight, 1)) }
            out.append((.wherePlace, 0.7))
            if b.contains(.indoor) { out.append((.indoors, 0.7)) }
        }
        if !k.complete { out.append((.anythingElse, 1.2)) }
        return out
    }

    static func nextTurn(_ scene: Scene, _ rng: inout WorldRandom, _ state: StoryPlanner.PlannerState) -> (DialogueTurn, [Int]) {
        let options = questions(scene, state, &rng)
        guard !options.isEmpty else { return (confirm(scene, &rng, state), []) }
        let q = options[rng.weighted(options.map(\.1))].0
        func np(_ o: SceneObject) -> (Referent, String) {
            let r = StoryPlanner.refer(to: o.id, in: scene, &rng, state, plain: true) ?? .definite(Mention(kind: o.kind))
            return (r, CaptionGrammar.nounPhrase(r))
        }
        func turn(_ family: String, _ qs: [String], _ answer: String, _ u: Utterance) -> DialogueTurn {
            let (text, id) = CaptionGrammar.pick(family, qs, &rng)
            return DialogueTurn(question: CaptionGrammar.sentence(text), answer: CaptionGrammar.sentence(answer), template: id, utterance: u)
        }
        switch q {
        case .colour(let o):
            let (r, s) = np(o)
            let a = rng.chance(0.5) ? "it is \(o.colour.word)." : "\(o.colour.word)."
            return (turn("q-colour", ["what colour is \(s)?", "which colour is \(s)?"], a, .fact(r, .colour(o.colour))), [])
        case .isColour(let o, let c):
            let (r, s) = np(o)
            let yes = o.colour == c
            return (turn("q-iscolour", ["is \(s) \(c.word)?"], yes ? "yes." : "no.", .fact(r, yes ? .colour(c) : .notColour(c))), [])
        case .size(let o):
            let (r, s) = np(o)
            let a = rng.chance(0.5) ? "it is \(o.size.word)." : "\(o.size.word)."
            return (turn("q-size", ["is \(s) big or small?", "how big is \(s)?"], a, .fact(r, .size(o.size))), [])
        case .isBig(let o):
            let (r, s) = np(o)
            return (turn("q-isbig", ["is \(s) big?"], o.size == .big ? "yes." : "no, it is small.", .fact(r, .size(o.size))), [])
        case .position(let o):
            let (r, s) = np(o)
            return (turn("q-where", ["where is \(s)?", "where in the picture is \(s)?"], o.position.phrase + ".", .fact(r, .position(o.position))), [])
        case .isAt(let o, let p):
            let (r, s) = np(o)
            let yes = o.position == p
            return (turn("q-isat", ["is \(s) \(p.phrase)?"], yes ? "yes." : "no.", .fact(r, yes ? .position(p) : .notPosition(p))), [])
        case .dayOrNight:
            let night = scene.background == .night
            let u = Utterance.place(night ? [.night] : Background.daylight.sorted())
            return (turn("q-daynight", ["is it day or night?", "is it daytime?"], night ? "night." : "day.", u), [])
        case .wherePlace:
            let a = rng.pick(scene.background.locatives) + "."
            return (turn("q-place", ["where is this?", "where was the picture taken?"], a, .place([scene.background])), [])
        case .indoors:
            let inside = scene.background == .indoor
            return (turn("q-indoors", ["is it indoors?", "is this inside?"], inside ? "yes." : "no, outside.",
                         .place(inside ? [.indoor] : Background.allCases.filter(\.isOutdoor))), [])
        case .anythingElse:
            let qs = ["is there anything else?", "anything else in the picture?", "can you see anything else?"]
            let mentioned = Set(state.idOfKey.values)
            guard let o = scene.objects.first(where: { !mentioned.contains($0.id) }) else {
                return (turn("q-else", qs, rng.pick(["no, nothing else.", "no, that is all."]), .nothingElse), [])
            }
            let m = Mention(kind: o.kind, colour: rng.chance(0.4) ? o.colour : nil, size: rng.chance(0.4) ? o.size : nil,
                            position: rng.chance(0.4) ? o.position : nil)
            return (turn("q-else", qs, "yes, \(CaptionGrammar.indefinite(m)).", .another(m)), [o.id])
        }
    }

    /// A round that only confirms a known fact (used once everything is known).
    static func confirm(_ scene: Scene, _ rng: inout WorldRandom, _ state: StoryPlanner.PlannerState) -> DialogueTurn {
        let o = rng.pick(scene.objects)
        let r = StoryPlanner.refer(to: o.id, in: scene, &rng, state, plain: true) ?? .definite(Mention(kind: o.kind))
        let s = CaptionGrammar.nounPhrase(r)
        let facts: [(String, Fact)] = [("so \(s) is \(o.colour.word)?", .colour(o.colour)),
                                       ("so \(s) is \(o.size.word)?", .size(o.size)),
                                       ("and \(s) is \(o.position.phrase)?", .position(o.position))]
        let i = rng.int(below: facts.count)
        return DialogueTurn(question: CaptionGrammar.sentence(facts[i].0), answer: rng.pick(["Yes.", "Yes, that is right."]),
                            template: "q-confirm.\(i)", utterance: .confirm(r, facts[i].1))
    }
}
