/// A generated caption: its text, the template that produced it, and its meaning.
public struct Caption: Sendable, Equatable {
    public var text: String
    /// "family.variant", e.g. "move.2"; used to measure wording variety.
    public var template: String
    public var utterance: Utterance
}

/// The caption grammar: turns utterances into English with some variety of wording.
///
/// Templates are chosen with the world's own PRNG; template ids are "family.variant". All noun
/// phrases come from ``nounPhrase(_:)`` and ``indefinite(_:withPosition:)`` so the words match the
/// vocabulary exactly.
public enum CaptionGrammar {
    /// "a small red ball", "an orange box", plus " on the left" when asked and known.
    public static func indefinite(_ m: Mention, withPosition: Bool = true) -> String {
        let words = [m.size?.word, m.colour?.word, m.kind.word].compactMap { $0 }.joined(separator: " ")
        let article = "aeiou".contains(words.first ?? "x") ? "an" : "a"
        let place = withPosition ? m.position.map { " " + $0.phrase } ?? "" : ""
        return "\(article) \(words)\(place)"
    }

    /// "it", "the cat", "the red ball", "the ball on the left".
    public static func nounPhrase(_ r: Referent) -> String {
        switch r {
        case .pronoun: return "it"
        case .definite(let m):
            let words = [m.size?.word, m.colour?.word, m.kind.word].compactMap { $0 }.joined(separator: " ")
            return "the \(words)" + (m.position.map { " " + $0.phrase } ?? "")
        }
    }

    /// The sentence with its first letter upper-cased.
    public static func sentence(_ s: String) -> String {
        guard let first = s.first else { return s }
        return first.uppercased() + s.dropFirst()
    }

    /// "a, b and c".
    static func list(_ items: [String]) -> String {
        if items.count <= 1 { return items.first ?? "" }
        return items.dropLast().joined(separator: ", ") + " and " + items[items.count - 1]
    }

    static func pick(_ family: String, _ options: [String], _ rng: inout WorldRandom) -> (String, String) {
        let i = rng.int(below: options.count)
        return (options[i], "\(family).\(i)")
    }

    /// The caption for a story utterance (or a dialogue's opening caption).
    public static func caption(_ u: Utterance, rng: inout WorldRandom) -> Caption {
        let (text, template) = realise(u, &rng)
        return Caption(text: sentence(text), template: template, utterance: u)
    }

    static func realise(_ u: Utterance, _ rng: inout WorldRandom) -> (String, String) {
        switch u {
        case .introduce(let places, let objects, let complete):
            if places.count == 1, complete { return introduceStory(places[0], objects, &rng) }
            return introduceDialogue(places, objects, &rng)
        case .move(let r, let verb, let p):
            let s = nounPhrase(r), v = verb.rawValue, g = p.goalPhrase
            return pick("move", ["\(s) \(v) \(g).", "\(s) \(v) over \(g).", "then \(s) \(v) \(g).", "now \(s) \(v) \(g)."], &rng)
        case .recolour(let r, let c):
            let s = nounPhrase(r)
            return pick("recolour", ["\(s) turns \(c.word).", "\(s) becomes \(c.word).", "suddenly \(s) is \(c.word).", "now \(s) is \(c.word)."], &rng)
        case .resize(let r, let size):
            let s = nounPhrase(r)
            if size == .big {
                return pick("grow", ["\(s) grows.", "\(s) grows bigger.", "\(s) becomes big."], &rng)
            }
            return pick("shrink", ["\(s) shrinks.", "\(s) gets smaller.", "\(s) becomes small."], &rng)
        case .appear(let m, .at(let p)):
            let a = indefinite(m, withPosition: false)
            return pick("appear", ["\(a) appears \(p.phrase).", "then \(a) shows up \(p.phrase).", "\(a) arrives \(p.phrase)."], &rng)
        case .appear(let m, .above(let r)):
            let a = indefinite(m, withPosition: false), o = nounPhrase(r)
            return pick("above", ["\(a) appears above \(o).", "above \(o), \(a) appears.", "\(a) comes out above \(o)."], &rng)
        case .leave(let r, let verb):
            let s = nounPhrase(r)
            if verb == .moves { return pick("leave", ["\(s) leaves.", "\(s) is gone now."], &rng) }
            let (t, id) = pick("leave", ["\(s) \(verb.rawValue) away.", "\(s) leaves.", "\(s) \(verb.rawValue) off and is gone."], &rng)
            return (t, id)
        case .setting(let b, let plural):
            return setting(b, plural: plural, &rng)
        case .fact, .place, .another, .nothingElse, .confirm:
            // Dialogue answers are realised with their question by ``DialogueGrammar``.
            return ("\(u)", "answer")
        }
    }

    static func introduceStory(_ b: Background, _ objects: [Mention], _ rng: inout WorldRandom) -> (String, String) {
        let loc = rng.pick(b.locatives), noun = rng.pick(b.nouns)
        if objects.count == 1, let m = objects.first {
            let a = indefinite(m, withPosition: false), pos = m.position?.phrase ?? "here"
            let verb = m.kind.layer == .sky ? rng.pick(["floats", "hangs", "is"]) : rng.pick(["sits", "stands", "is"])
            return pick("intro1", ["\(loc), \(a) \(verb) \(pos).", "there is \(a) \(pos) of \(noun).",
                                   "\(noun) with \(a) \(pos).", "\(a) \(verb) \(pos) of \(noun)."], &rng)
        }
        let items = list(objects.map { indefinite($0) })
        return pick("introN", ["\(loc), there is \(items).", "\(noun) with \(items).", "\(loc) we see \(items)."], &rng)
    }

    static func introduceDialogue(_ places: [Background], _ objects: [Mention], _ rng: inout WorldRandom) -> (String, String) {
        let a = list(objects.map { indefinite($0) })
        if places == [.indoor] { return pick("dcap-in", ["\(a) in a room.", "\(a) indoors."], &rng) }
        if !places.contains(.indoor) { return pick("dcap-out", ["\(a) outside.", "\(a) outdoors.", "\(a) out in the open."], &rng) }
        return pick("dcap", ["a picture of \(a).", "a photo with \(a) in it."], &rng)
    }

    static func setting(_ b: Background, plural: Bool, _ rng: inout WorldRandom) -> (String, String) {
        let they = plural ? "they" : "it", go = plural ? "go" : "goes", are = plural ? "are" : "is"
        switch b {
        case .night: return pick("night", ["night falls.", "it gets dark."], &rng)
        case .day: return pick("day", ["the sun comes up.", "morning comes and the meadow is sunny."], &rng)
        case .snow: return pick("snow", ["it starts to snow.", "snow covers the ground."], &rng)
        case .beach: return pick("beach", ["\(they) \(go) to the beach.", "now \(they) \(are) at the beach."], &rng)
        case .indoor: return pick("indoor", ["\(they) \(go) inside.", "now \(they) \(are) in a room."], &rng)
        case .forest: return pick("forest", ["\(they) \(go) into a forest.", "now \(they) \(are) in the woods."], &rng)
        case .city: return pick("city", ["\(they) \(go) to the city.", "now \(they) \(are) in a city street."], &rng)
        case .desert: return pick("desert", ["\(they) \(go) to the desert.", "now \(they) \(are) among sand dunes."], &rng)
        }
    }
}
