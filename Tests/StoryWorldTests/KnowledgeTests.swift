import Testing
@testable import StoryWorld

/// The caption semantics on hand-written utterances: what a reader learns from one caption.
@Suite("StoryWorld caption semantics")
struct KnowledgeTests {
    static func scene(_ b: Background, _ objects: [(ObjectKind, ObjectColour, ObjectSize, Position)]) -> Scene {
        Scene(background: b, objects: objects.enumerated().map { SceneObject(id: $0 + 1, kind: $1.0, colour: $1.1, size: $1.2, position: $1.3) })
    }

    @Test("'It rolls to the right.' alone: some ball is on the right, nothing else is known")
    func pronounAlone() {
        let k = Knowledge.reading([.move(.pronoun, .rolls, .right)])
        #expect(k.accommodations == 1 && !k.complete)
        #expect(k.isConsistent(with: Self.scene(.night, [(.ball, .red, .big, .right), (.house, .blue, .small, .left)])))
        #expect(k.isConsistent(with: Self.scene(.beach, [(.ball, .green, .small, .right)])))
        #expect(!k.isConsistent(with: Self.scene(.day, [(.ball, .red, .big, .left)])))
        #expect(!k.isConsistent(with: Self.scene(.day, [(.cat, .red, .big, .right)])))
    }

    @Test("in context, 'it' and 'the cat' resolve to the entity meant and update it")
    func contextResolution() {
        let intro = Utterance.introduce(places: [.snow], objects: [
            Mention(kind: .cat, colour: .white, size: .small, position: .left),
            Mention(kind: .house, colour: .red, size: .big, position: .right),
        ], complete: true)
        let k = Knowledge.reading([intro, .recolour(.definite(Mention(kind: .cat)), .green), .move(.pronoun, .walks, .middle), .setting(.night, plural: true)])
        #expect(k.ambiguities == 0 && k.accommodations == 0)
        #expect(k.isConsistent(with: Self.scene(.night, [(.cat, .green, .small, .middle), (.house, .red, .big, .right)])))
        #expect(!k.isConsistent(with: Self.scene(.night, [(.cat, .white, .small, .middle), (.house, .red, .big, .right)])))
        #expect(!k.isConsistent(with: Self.scene(.snow, [(.cat, .green, .small, .middle), (.house, .red, .big, .right)])))
        // Complete: an extra object is not allowed.
        #expect(!k.isConsistent(with: Self.scene(.night, [(.cat, .green, .small, .middle), (.house, .red, .big, .right), (.star, .red, .big, .left)])))
    }

    @Test("'A star appears above it.' ties the star to its host's column")
    func aboveRelation() {
        let k = Knowledge.reading([.appear(Mention(kind: .star, colour: .yellow), .above(.pronoun))])
        #expect(k.isConsistent(with: Self.scene(.day, [(.tree, .green, .big, .left), (.star, .yellow, .small, .left)])))
        #expect(!k.isConsistent(with: Self.scene(.day, [(.tree, .green, .big, .left), (.star, .yellow, .small, .right)])))
        #expect(!k.isConsistent(with: Self.scene(.day, [(.balloon, .green, .big, .left), (.star, .yellow, .small, .left)])))
    }

    @Test("a description matching two entities is counted as ambiguous")
    func ambiguity() {
        let intro = Utterance.introduce(places: [.day], objects: [Mention(kind: .ball, colour: .red, position: .left),
                                                                  Mention(kind: .ball, colour: .blue, position: .right)], complete: true)
        var k = Knowledge.reading([intro])
        #expect(k.resolve(.definite(Mention(kind: .ball))) == nil)
        #expect(k.resolve(.definite(Mention(kind: .ball, colour: .blue))) == k.entities[1].key)
        #expect(k.resolve(.pronoun) == nil)
        k.apply(.resize(.definite(Mention(kind: .ball)), .big))
        #expect(k.ambiguities == 1)
    }

    @Test("dialogue answers narrow the possibilities")
    func dialogueFacts() {
        var k = Knowledge.reading([.introduce(places: Background.allCases.filter(\.isOutdoor), objects: [Mention(kind: .ball)], complete: false)])
        let truth = Self.scene(.night, [(.ball, .red, .small, .left), (.house, .blue, .big, .middle)])
        k.apply(.fact(.pronoun, .notColour(.blue)))
        #expect(k.entities[0].colours.count == ObjectColour.allCases.count - 1)
        k.apply(.place([.night]))
        k.apply(.another(Mention(kind: .house)))
        k.apply(.fact(.definite(Mention(kind: .ball)), .position(.left)))
        #expect(k.isConsistent(with: truth))
        #expect(!k.complete)
        k.apply(.nothingElse)
        #expect(k.isConsistent(with: truth))
        #expect(!k.isConsistent(with: Self.scene(.night, [(.ball, .red, .small, .left), (.house, .blue, .big, .middle), (.star, .red, .big, .left)])))
    }

    @Test("caption texts realise their utterances in the vocabulary's words")
    func realisation() {
        for i in 0..<40 {
            var rng = WorldRandom(seed: UInt64(i), stream: 9, index: 0)
            let move = CaptionGrammar.caption(.move(.pronoun, .rolls, .right), rng: &rng)
            #expect(move.text.contains("it rolls") || move.text.contains("It rolls"))
            #expect(move.text.hasSuffix("to the right."))
            let recolour = CaptionGrammar.caption(.recolour(.definite(Mention(kind: .cat)), .green), rng: &rng)
            #expect(recolour.text.lowercased().contains("the cat") && recolour.text.hasSuffix("green."))
            let appear = CaptionGrammar.caption(.appear(Mention(kind: .star, colour: .orange, size: .small), .above(.pronoun)), rng: &rng)
            #expect(appear.text.lowercased().contains("a small orange star") && appear.text.lowercased().contains("above it"))
            let intro = CaptionGrammar.caption(.introduce(places: [.snow], objects: [Mention(kind: .ball, colour: .orange, size: .small, position: .left)], complete: true), rng: &rng)
            let lower = intro.text.lowercased()
            #expect(lower.contains("a small orange ball") && lower.contains("on the left"), "\(intro.text)")
            #expect((Background.snow.locatives + Background.snow.nouns).contains { lower.contains($0) }, "\(intro.text)")
        }
        #expect(CaptionGrammar.indefinite(Mention(kind: .box, colour: .orange)) == "an orange box")
        #expect(CaptionGrammar.nounPhrase(.definite(Mention(kind: .ball, position: .left))) == "the ball on the left")
    }
}
