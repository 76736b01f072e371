/// Reads free caption text (e.g. a model's caption of a panel) against the panel's scene graph and says,
/// per attribute the caption names, whether it is true of the scene: background, and for each object it
/// mentions the kind (is there one?), colour, size and position. Also flags dialogue-style text, kinds
/// named that the scene lacks (hallucinations) and kinds named more often than the scene holds them
/// (a captioner repeating its first object: "a big green house on the left and a big green house").
///
/// The reader knows only the world's closed vocabulary, the way ``CaptionGrammar`` words it (so the
/// grammar's own captions read as fully correct; a test pins this); other words are ignored.
///
/// - Noun phrases: `[a|an|the] [size] [colour] KIND [on the left | in the middle | on the right]`, adjectives in
///   any order, plural kinds ("balls") too. Words after the noun phrase — a position ("a cat sits on the
///   left"), a predicate ("is blue", "grows"), a goal ("to the left") — belong to the latest object mentioned
///   in the sentence; a second position phrase for it is ignored, a goal replaces it.
/// - Change verbs describe this panel, so they override what the subject's own words said about the previous
///   one: "the red ball turns blue" claims blue; "the ball on the left rolls to the right" claims right;
///   "the small cat grows" claims big. An object that leaves ("rolls away", "leaves", "is gone") is no
///   longer in the scene and is not judged.
/// - "it" / "they" are not resolved (they usually point into earlier panels' captions): what is said of
///   them counts as not named.
/// - An attribute of a mention is judged against the scene's objects of that kind: correct when any of
///   them has the value (scenes rarely repeat a kind). A mention whose kind is not in the scene counts as a
///   kind error and a hallucination; its other attributes are not judged (there is no object to judge).
/// - Background: every background word in the caption ("beach", "at night", "outside" = any outdoor
///   background) must fit the scene's background; the caption makes one background claim at most.
/// - Questions (sentences ending in "?") make no claims; answers ("Yes, a red ball.") do.
public struct CaptionChecker: Sendable {
    public init() {}

    /// The attributes a caption can name.
    public enum Attribute: String, CaseIterable, Sendable {
        case background, kind, colour, size, position
    }

    /// How many claims the caption makes about one attribute, and how many are true.
    public struct Verdict: Sendable, Equatable {
        public var claims = 0
        public var correct = 0
        public var named: Bool { claims > 0 }
        /// Named, and every claim true.
        public var allCorrect: Bool { claims > 0 && correct == claims }
        /// Fraction of the claims that are true; nil when the caption does not name the attribute.
        public var accuracy: Double? { claims > 0 ? Double(correct) / Double(claims) : nil }
    }

    /// An object the caption says is in the panel, as read.
    public struct ObjectMention: Sendable, Equatable {
        public var kind: ObjectKind
        public var colour: ObjectColour?
        public var size: ObjectSize?
        public var position: Position?
    }

    public struct Result: Sendable {
        public var scene: Scene
        /// The backgrounds the caption allows (nil: it names none).
        public var backgrounds: Set<Background>?
        /// The objects the caption claims are present (leaving objects and pronouns excluded).
        public var mentions: [ObjectMention]
        public var verdicts: [Attribute: Verdict]
        /// Questions, "Q:"/"A:" markers or yes/no answers: dialogue, not a caption.
        public var dialogueText: Bool
        /// Kinds the caption names that the scene does not hold, sorted.
        public var hallucinated: [ObjectKind]
        /// Kinds the scene holds that the caption mentions more often than the scene holds them, sorted. Each
        /// extra mention is judged like any other (its kind is there), so this is what says it adds nothing.
        public var repeated: [ObjectKind]

        public subscript(_ a: Attribute) -> Verdict { verdicts[a] ?? Verdict() }

        /// One line per finding, e.g. "background beach ✓; red ball: kind ✓ colour ✗ (scene: blue)".
        public var findings: String {
            var parts: [String] = []
            if let b = backgrounds {
                let words = b.count == Background.allCases.count - 1 && !b.contains(.indoor) ? "outdoor" : b.map(\.rawValue).sorted().joined(separator: "/")
                parts.append("background \(words) " + (b.contains(scene.background) ? "✓" : "✗ (scene: \(scene.background.rawValue))"))
            }
            for m in mentions {
                let words = [m.size?.word, m.colour?.word, m.kind.word, m.position.map { "(\($0.rawValue))" }].compactMap { $0 }.joined(separator: " ")
                let same = scene.objects.filter { $0.kind == m.kind }
                guard !same.isEmpty else { parts.append("\(words): not in the scene"); continue }
                var marks: [String] = []
                func mark<T: RawRepresentable>(_ name: String, _ v: T?, _ actual: (SceneObject) -> T) where T.RawValue == String, T: Equatable {
                    guard let v else { return }
                    marks.append(same.contains { actual($0) == v } ? "\(name) ✓" : "\(name) ✗ (scene: \(same.map { actual($0).rawValue }.joined(separator: "/")))")
                }
                mark("colour", m.colour, \.colour)
                mark("size", m.size, \.size)
                mark("position", m.position, \.position)
                parts.append("\(words): " + (["kind ✓"] + marks).joined(separator: " "))
            }
            if !repeated.isEmpty { parts.append("named more often than the scene holds: " + repeated.map(\.word).joined(separator: ", ")) }
            if dialogueText { parts.append("dialogue text") }
            return parts.isEmpty ? "names nothing" : parts.joined(separator: "; ")
        }
    }

    /// Reads `caption` against `scene`.
    public func check(_ caption: String, against scene: Scene) -> Result {
        let sentences = Self.sentences(caption)
        var backgrounds: Set<Background>?
        var mentions: [ObjectMention] = []
        for s in sentences where !s.question {
            let read = Self.read(s.words)
            if let b = read.backgrounds { backgrounds = (backgrounds ?? Set(Background.allCases)).intersection(b) }
            mentions += read.mentions
        }
        var verdicts: [Attribute: Verdict] = [:]
        func judge(_ a: Attribute, _ ok: Bool) {
            verdicts[a, default: Verdict()].claims += 1
            if ok { verdicts[a, default: Verdict()].correct += 1 }
        }
        if let b = backgrounds { judge(.background, b.contains(scene.background)) }
        var hallucinated = Set<ObjectKind>()
        for m in mentions {
            let same = scene.objects.filter { $0.kind == m.kind }
            judge(.kind, !same.isEmpty)
            guard !same.isEmpty else { hallucinated.insert(m.kind); continue }
            if let c = m.colour { judge(.colour, same.contains { $0.colour == c }) }
            if let z = m.size { judge(.size, same.contains { $0.size == z }) }
            if let p = m.position { judge(.position, same.contains { $0.position == p }) }
        }
        let repeated = Dictionary(grouping: mentions, by: \.kind).compactMap { kind, named in
            let held = scene.objects.count { $0.kind == kind }
            return held > 0 && named.count > held ? kind : nil
        }
        return Result(scene: scene, backgrounds: backgrounds, mentions: mentions, verdicts: verdicts,
                      dialogueText: Self.isDialogue(caption, sentences), hallucinated: hallucinated.sorted(),
                      repeated: repeated.sorted())
    }

    // MARK: reading

    struct Sentence {
        var words: [String]
        var question: Bool
    }

    /// Lower-cased words per sentence; sentences end at ".", "!", "?", ";" or a line break. Commas and
    /// other punctuation separate words only.
    static func sentences(_ text: String) -> [Sentence] {
        var out: [Sentence] = [], words: [String] = [], word = ""
        func endWord() { if !word.isEmpty { words.append(word); word = "" } }
        func endSentence(question: Bool) {
            endWord()
            if !words.isEmpty || question { out.append(Sentence(words: words, question: question)) }
            words = []
        }
        for ch in text.lowercased() {
            if ch.isLetter || ch == "'" { word.append(ch) } else if ch == "?" { endSentence(question: true) }
            else if ch == "." || ch == "!" || ch == ";" || ch.isNewline { endSentence(question: false) }
            else { endWord() }
        }
        endSentence(question: false)
        return out
    }

    /// Dialogue-style text: a question mark, a "Q:"/"A:" marker, or a sentence opening like a question or a
    /// yes/no answer ("Is it …", "Yes, …"). The grammar's captions never do any of these.
    static func isDialogue(_ text: String, _ sentences: [Sentence]) -> Bool {
        if text.contains("?") { return true }
        let lower = text.lowercased()
        for marker in ["q:", "a:"] {
            var rest = lower[...]
            while let r = rest.range(of: marker) {
                // A marker is a word of its own ("A: yes"), not the end of one ("sofa:").
                if r.lowerBound == lower.startIndex || !lower[lower.index(before: r.lowerBound)].isLetter { return true }
                rest = rest[r.upperBound...]
            }
        }
        let openers: Set<String> = ["yes", "no", "is", "are", "does", "do", "what", "which", "where", "how"]
        return sentences.contains { s in s.words.first.map(openers.contains) ?? false }
    }

    static let kindWords: [String: ObjectKind] = {
        var d: [String: ObjectKind] = [:]
        for k in ObjectKind.allCases { d[k.word] = k; d[k == .box ? "boxes" : k.word + "s"] = k }
        return d
    }()
    static let colourWords = Dictionary(uniqueKeysWithValues: ObjectColour.allCases.map { ($0.word, $0) })
    // "large"/"little" are not the grammar's words, but a reader would take them so.
    static let sizeWords: [String: ObjectSize] = ["small": .small, "little": .small, "big": .big, "large": .big]
    static let positionWords = Dictionary(uniqueKeysWithValues: Position.allCases.map { ($0.rawValue, $0) })
    static let moveVerbs = Set(MoveVerb.allCases.map(\.rawValue))
    static let leaveWords: Set<String> = ["leaves", "away", "off", "gone"]
    static let pronouns: Set<String> = ["it", "they", "them"]
    static let copulas: Set<String> = ["is", "turns", "becomes", "are"]
    /// Words that name a background, from ``Background/locatives`` and ``Background/nouns`` and the setting
    /// captions ("night falls", "the sun comes up"); "outside" names every outdoor background.
    static let backgroundWords: [String: Set<Background>] = {
        var d: [String: Set<Background>] = [:]
        let table: [(Background, [String])] = [
            (.day, ["sunny", "meadow", "sun", "morning", "day"]), (.night, ["night", "dark"]), (.beach, ["beach", "sea"]),
            (.snow, ["snow", "snowy", "winter"]), (.indoor, ["room", "indoors"]), (.forest, ["forest", "woods"]),
            (.city, ["city", "street"]), (.desert, ["desert", "dunes"]),
        ]
        for (b, words) in table { for w in words { d[w] = [b] } }
        let outdoor = Set(Background.allCases.filter(\.isOutdoor))
        for w in ["outside", "outdoors", "open"] { d[w] = outdoor }
        return d
    }()

    /// One sentence's claims.
    static func read(_ w: [String]) -> (backgrounds: Set<Background>?, mentions: [ObjectMention]) {
        var backgrounds: Set<Background>?
        var mentions: [ObjectMention] = []
        var leaving: Set<Int> = []
        /// The mention predicates attach to; nil after a pronoun (unresolved) or before any mention.
        var subject: Int?
        var colour: ObjectColour?, size: ObjectSize?
        func clearAdjectives() { colour = nil; size = nil }
        func isModifier(_ i: Int) -> Bool {
            i < w.count && (kindWords[w[i]] != nil || colourWords[w[i]] != nil || sizeWords[w[i]] != nil)
        }
        var i = 0
        while i < w.count {
            let word = w[i]
            defer { i += 1 }
            // "inside a house" is a place, not a house.
            if word == "inside", i + 2 < w.count, w[i + 1] == "a", w[i + 2] == "house" {
                backgrounds = (backgrounds ?? Set(Background.allCases)).intersection([.indoor])
                clearAdjectives(); i += 2; continue
            }
            if let b = backgroundWords[word] {
                backgrounds = (backgrounds ?? Set(Background.allCases)).intersection(b)
                clearAdjectives(); continue
            }
            // Positions: "on the left" (where it is), "to the left" (where it goes: overrides).
            if i + 2 < w.count, w[i + 1] == "the", let p = positionWords[w[i + 2]], ["on", "in", "to"].contains(word) {
                if let s = subject, word == "to" || mentions[s].position == nil { mentions[s].position = p }
                clearAdjectives(); i += 2; continue
            }
            if let k = kindWords[word] {
                mentions.append(ObjectMention(kind: k, colour: colour, size: size, position: nil))
                subject = mentions.count - 1
                clearAdjectives(); continue
            }
            if let c = colourWords[word] {
                if let s = subject, i > 0, copulas.contains(w[i - 1]), !isModifier(i + 1) { mentions[s].colour = c; clearAdjectives() } else { colour = c }
                continue
            }
            if let z = sizeWords[word] {
                if let s = subject, i > 0, copulas.contains(w[i - 1]), !isModifier(i + 1) { mentions[s].size = z; clearAdjectives() } else { size = z }
                continue
            }
            clearAdjectives()
            guard let s = subject else { continue }
            if pronouns.contains(word) { subject = nil }
            else if moveVerbs.contains(word) { mentions[s].position = nil }   // it was there; a goal says where it is
            else if leaveWords.contains(word) { leaving.insert(s) }
            else if word == "grows" || word == "bigger" { mentions[s].size = .big }
            else if word == "shrinks" || word == "smaller" { mentions[s].size = .small }
        }
        return (backgrounds, mentions.indices.filter { !leaving.contains($0) }.map { mentions[$0] })
    }
}
