import Stories
import Testing
@testable import StoryWorld

@Suite("StoryWorld caption checker")
struct CaptionCheckerTests {
    /// A beach with a small red ball on the left and a big blue star in the middle.
    static let beach = Scene(background: .beach, objects: [
        SceneObject(id: 1, kind: .ball, colour: .red, size: .small, position: .left),
        SceneObject(id: 2, kind: .star, colour: .blue, size: .big, position: .middle),
    ])

    func check(_ caption: String, _ scene: Scene = beach) -> CaptionChecker.Result {
        CaptionChecker().check(caption, against: scene)
    }

    func verdict(_ r: CaptionChecker.Result, _ a: CaptionChecker.Attribute) -> (Int, Int) { (r[a].claims, r[a].correct) }

    @Test("a correct caption: every attribute it names is right, the rest are not named")
    func correct() {
        let r = check("On a beach, there is a small red ball on the left and a big blue star in the middle.")
        for a in CaptionChecker.Attribute.allCases { #expect(r[a].accuracy == 1, "\(a)") }
        #expect(verdict(r, .kind) == (2, 2) && verdict(r, .colour) == (2, 2) && verdict(r, .background) == (1, 1))
        #expect(!r.dialogueText && r.hallucinated.isEmpty)
        let bare = check("A ball.")
        #expect(verdict(bare, .kind) == (1, 1))
        for a in [CaptionChecker.Attribute.background, .colour, .size, .position] { #expect(!bare[a].named, "\(a)") }
    }

    @Test("a wrong colour, size or position is wrong for that attribute only")
    func wrongAttributes() {
        let r = check("On a beach, a big green ball sits on the right.")
        #expect(verdict(r, .kind) == (1, 1) && verdict(r, .background) == (1, 1))
        #expect(verdict(r, .colour) == (1, 0) && verdict(r, .size) == (1, 0) && verdict(r, .position) == (1, 0))
        let mixed = check("A red ball and a red star.")
        #expect(verdict(mixed, .colour) == (2, 1) && mixed[.colour].accuracy == 0.5)
        #expect(mixed.findings.contains("colour ✗ (scene: blue)"))
    }

    @Test("a wrong background; \"outside\" fits any outdoor background and none indoors")
    func background() {
        #expect(verdict(check("A red ball in the snow."), .background) == (1, 0))
        #expect(verdict(check("A red ball outside."), .background) == (1, 1))
        #expect(verdict(check("A red ball indoors."), .background) == (1, 0))
        #expect(verdict(check("A red ball outside.", Scene(background: .indoor, objects: Self.beach.objects)), .background) == (1, 0))
        // "inside a house" is the room, not a house.
        let inside = check("Inside a house, a red ball sits on the left.", Scene(background: .indoor, objects: Self.beach.objects))
        #expect(verdict(inside, .background) == (1, 1) && verdict(inside, .kind) == (1, 1) && inside.hallucinated.isEmpty)
        // Two places that cannot both hold are one wrong claim.
        #expect(verdict(check("A red ball on a beach in the city."), .background) == (1, 0))
    }

    @Test("a kind not in the scene is a kind error and a hallucination; its other attributes are not judged")
    func hallucinated() {
        let r = check("A red ball and a green cat on the right.")
        #expect(verdict(r, .kind) == (2, 1))
        #expect(r.hallucinated == [.cat])
        #expect(verdict(r, .colour) == (1, 1) && !r[.position].named)
        #expect(check("Two cars and a house.").hallucinated == [.car, .house])
    }

    @Test("a kind named more often than the scene holds it is flagged as repeated, not as a hallucination")
    func repeated() {
        let r = check("A beach with a small red ball on the left and a small red ball")
        #expect(r.repeated == [.ball] && r.hallucinated.isEmpty)
        #expect(verdict(r, .kind) == (2, 2))
        #expect(r.findings.contains("named more often than the scene holds: ball"))
        #expect(check("A beach with a small red ball on the left and a big blue star in the middle.").repeated.isEmpty)
        let twoBalls = Scene(background: .beach, objects: Self.beach.objects + [SceneObject(id: 3, kind: .ball, colour: .green, size: .big, position: .right)])
        #expect(check("A red ball and a green ball.", twoBalls).repeated.isEmpty)
        #expect(check("A red ball, a green ball and a ball.", twoBalls).repeated == [.ball])
        // A kind the scene lacks is a hallucination however often it is named.
        #expect(check("A cat and a cat.").repeated.isEmpty && check("A cat and a cat.").hallucinated == [.cat])
    }

    @Test("dialogue-style text is flagged; the model's question-and-answer captions make claims only in their statements")
    func dialogue() {
        let r = check("A car outside. Is it on the left? Yes, a big? Yes")
        #expect(r.dialogueText)
        #expect(r.hallucinated == [.car] && !r[.position].named && !r[.size].named)
        for text in ["Q: what is it A: a ball", "Yes, a red ball.", "No, nothing else.", "Is it red", "a ball? yes"] {
            #expect(check(text).dialogueText, "\(text)")
        }
        for text in ["A red ball on a sofa: nothing else.", "Now the ball is red.", "A ball on the left. Nothing else."] {
            #expect(!check(text).dialogueText, "\(text)")
        }
    }

    @Test("synonyms and plurals: the grammar's place phrases, adjectives in any order, plural kinds")
    func synonyms() {
        #expect(verdict(check("By the sea, a ball."), .background) == (1, 1))
        #expect(verdict(check("A sandy beach by the sea with a ball."), .background) == (1, 1))
        let night = Scene(background: .night, objects: Self.beach.objects)
        for text in ["It gets dark.", "Night falls.", "A red ball in a field at night."] {
            #expect(verdict(check(text, night), .background) == (1, 1), "\(text)")
        }
        let r = check("A red small ball and two large stars.")
        #expect(verdict(r, .size) == (2, 2) && verdict(r, .kind) == (2, 2) && verdict(r, .colour) == (1, 1))
    }

    @Test("change verbs claim the new state; the subject's own words describe the old one; leaving objects and \"it\" are not judged")
    func changes() {
        // The scene is after the change: the ball is red, small, on the left.
        #expect(verdict(check("The blue ball turns red."), .colour) == (1, 1))
        #expect(verdict(check("Now the ball is blue."), .colour) == (1, 0))
        #expect(verdict(check("The ball on the right rolls to the left."), .position) == (1, 1))
        #expect(verdict(check("The ball on the left rolls over to the middle."), .position) == (1, 0))
        #expect(verdict(check("The big ball shrinks."), .size) == (1, 1))
        #expect(verdict(check("The big ball gets smaller."), .size) == (1, 1))
        #expect(verdict(check("The small ball grows bigger."), .size) == (1, 0))
        let gone = check("The cat walks off and is gone.")
        #expect(!gone[.kind].named && gone.hallucinated.isEmpty)
        let it = check("It turns green.")
        #expect(it.mentions.isEmpty && !it[.colour].named)
        // An appearing object above another: both are claimed present; the one below keeps its position.
        let above = check("A blue star appears above the red ball on the left.")
        #expect(verdict(above, .kind) == (2, 2) && verdict(above, .position) == (1, 1) && verdict(above, .colour) == (2, 2))
    }

    @Test("every caption the grammar writes reads as fully correct against its own panel, with no dialogue text")
    func grammarIsGroundTruth() throws {
        let options = WorldOptions(seed: 11, stories: 120, dialogues: 80)
        var panels = 0, named: [CaptionChecker.Attribute: Int] = [:]
        for entry in StoryWorldGenerator.entries(options) {
            for panel in entry.panels {
                let scene = try Scene(metadata: try #require(panel.metadata))
                let r = CaptionChecker().check(panel.text, against: scene)
                panels += 1
                #expect(!r.dialogueText, "\(panel.text)")
                #expect(r.hallucinated.isEmpty, "\(panel.text) vs \(scene.graphKey)")
                #expect(r.repeated.isEmpty, "\(panel.text) vs \(scene.graphKey)")
                for a in CaptionChecker.Attribute.allCases where r[a].named {
                    named[a, default: 0] += 1
                    #expect(r[a].allCorrect, "\(a): \(panel.text) vs \(scene.graphKey): \(r.findings)")
                }
                // And it is not merely agreeable: shift every object's colour and the background, and each such claim turns false.
                var shifted = scene
                let colours = ObjectColour.allCases, places = Background.allCases
                for j in shifted.objects.indices {
                    shifted.objects[j].colour = colours[(colours.firstIndex(of: scene.objects[j].colour)! + 1) % colours.count]
                }
                shifted.background = places[(places.firstIndex(of: scene.background)! + 1) % places.count]
                let s = CaptionChecker().check(panel.text, against: shifted)
                #expect(s[.colour].correct == 0, "\(panel.text) vs \(shifted.graphKey): \(s.findings)")
                if r[.background].named, r.backgrounds?.count == 1 { #expect(s[.background].correct == 0, "\(panel.text)") }
            }
        }
        #expect(panels == 120 * 5 + 80)
        // The reader must actually read the grammar's captions, not just stay silent.
        for a in CaptionChecker.Attribute.allCases { #expect(named[a, default: 0] >= 50, "\(a) named in only \(named[a, default: 0]) captions") }
    }
}
