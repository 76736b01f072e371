import Foundation
import Imaging
import Testing
@testable import StoryWorld

@Suite("StoryWorld rendering")
struct RenderingTests {
    @Test("object colours are well separated in RGB")
    func colourSeparation() {
        var smallest = Int.max
        let all = ObjectColour.allCases
        for i in all.indices {
            for j in all.indices where j > i {
                let a = Support.rgb(all[i]), b = Support.rgb(all[j])
                let d = (a.0 - b.0) * (a.0 - b.0) + (a.1 - b.1) * (a.1 - b.1) + (a.2 - b.2) * (a.2 - b.2)
                smallest = min(smallest, Int(Double(d).squareRoot()))
            }
        }
        print("smallest RGB distance between object colours: \(smallest)")
        #expect(smallest >= 80)
        #expect(ObjectKind.allCases.count >= 6 && ObjectColour.allCases.count >= 6 && Background.allCases.count >= 5)
    }

    @Test("corners show each background's sky and ground colours", arguments: Background.allCases)
    func corners(background: Background) {
        let scene = Scene(background: background, objects: [SceneObject(id: 1, kind: .ball, colour: .red, size: .small, position: .middle)])
        for size in [64, 256] {
            let image = SceneRenderer.render(scene, size: size)
            #expect(image.width == size && image.height == size && image.channels == 3)
            let (top, bottom) = SceneRenderer.cornerColours(background)
            let topRight = Support.pixel(image, size - 1, 0), bottomLeft = Support.pixel(image, 0, size - 1)
            #expect(Support.diff(topRight, (Int(top.0), Int(top.1), Int(top.2))) <= 40, "\(background) top-right \(topRight)")
            #expect(Support.diff(bottomLeft, (Int(bottom.0), Int(bottom.1), Int(bottom.2))) <= 40, "\(background) bottom-left \(bottomLeft)")
        }
    }

    @Test("backgrounds are distinct from each other")
    func backgroundsDistinct() {
        let images = Background.allCases.map { SceneRenderer.render(Scene(background: $0, objects: []), size: 64) }
        for i in images.indices {
            for j in images.indices where j > i {
                // Mean absolute difference over all pixels and channels.
                let total = zip(images[i].pixels, images[j].pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }
                let mean = Double(total) / Double(images[i].pixels.count)
                #expect(mean > 12, "\(Background.allCases[i]) vs \(Background.allCases[j]): mean difference \(mean)")
            }
        }
    }

    @Test("every object's colour appears at its probe point, in every story panel")
    func objectColoursAtPositions() {
        let options = WorldOptions(seed: 11, stories: 60, dialogues: 20)
        var checked = 0
        for index in 0..<60 {
            for scene in StoryPlanner.story(seed: options.seed, index: index).scenes {
                let image = SceneRenderer.render(scene, size: 64)
                for o in scene.objects {
                    let p = SceneRenderer.probePoint(o)
                    let x = Int(p.x * 64), y = Int(p.y * 64)
                    let got = Support.pixel(image, x, y)
                    // Nearest vocabulary colour must be the object's own colour.
                    let nearest = ObjectColour.allCases.min { Support.diff(Support.rgb($0), got) < Support.diff(Support.rgb($1), got) }
                    #expect(nearest == o.colour, "\(o) at (\(x),\(y)) shows \(got)")
                    checked += 1
                }
            }
        }
        #expect(checked > 300)
    }

    @Test("big objects cover much more area than small ones", arguments: ObjectKind.allCases)
    func sizesDiffer(kind: ObjectKind) {
        let plain = SceneRenderer.render(Scene(background: .day, objects: []), size: 64)
        func area(_ size: ObjectSize) -> Int {
            let o = SceneObject(id: 1, kind: kind, colour: .purple, size: size, position: .middle)
            let image = SceneRenderer.render(Scene(background: .day, objects: [o]), size: 64)
            return stride(from: 0, to: image.pixels.count, by: 3).filter { i in
                (0..<3).contains { abs(Int(image.pixels[i + $0]) - Int(plain.pixels[i + $0])) > 8 }
            }.count
        }
        let big = area(.big), small = area(.small)
        #expect(small > 15, "\(kind) small area \(small)")
        #expect(Double(big) > 2.2 * Double(small), "\(kind): big \(big) px vs small \(small) px")
    }

    @Test("edges are anti-aliased: coverage gives intermediate values")
    func antiAliasing() {
        let o = SceneObject(id: 1, kind: .ball, colour: .blue, size: .big, position: .left)
        let image = SceneRenderer.render(Scene(background: .day, objects: [o]), size: 64)
        let plain = SceneRenderer.render(Scene(background: .day, objects: []), size: 64)
        let rim = ObjectColour.blue.rgb
        let rimRGB = (Int(Double(rim.r) * 0.45), Int(Double(rim.g) * 0.45), Int(Double(rim.b) * 0.45))
        // Pixels on the object's boundary that are neither background nor rim nor fill.
        var intermediate = 0
        for y in 0..<64 {
            for x in 0..<64 {
                let got = Support.pixel(image, x, y), bg = Support.pixel(plain, x, y)
                if Support.diff(got, bg) > 12 && Support.diff(got, rimRGB) > 12 && Support.diff(got, Support.rgb(.blue)) > 12 {
                    intermediate += 1
                }
            }
        }
        // The ball's circumference at 64 px is about 55 pixels; most edge pixels are partially covered.
        #expect(intermediate >= 20, "only \(intermediate) intermediate edge pixels")
    }

    @Test("shapes are distinguishable: every pair of kinds differs in silhouette at 64 px")
    func silhouettesDiffer() {
        func mask(_ kind: ObjectKind) -> [Bool] {
            let o = SceneObject(id: 1, kind: kind, colour: .red, size: .big, position: .middle)
            let image = SceneRenderer.render(Scene(background: .snow, objects: [o]), size: 64)
            let plain = SceneRenderer.render(Scene(background: .snow, objects: []), size: 64)
            return stride(from: 0, to: image.pixels.count, by: 3).map { i in
                (0..<3).contains { abs(Int(image.pixels[i + $0]) - Int(plain.pixels[i + $0])) > 40 }
            }
        }
        let masks = ObjectKind.allCases.map(mask)
        for i in masks.indices {
            for j in masks.indices where j > i {
                let union = zip(masks[i], masks[j]).filter { $0 || $1 }.count
                let inter = zip(masks[i], masks[j]).filter { $0 && $1 }.count
                let iou = Double(inter) / Double(max(union, 1))
                #expect(iou < 0.85, "\(ObjectKind.allCases[i]) vs \(ObjectKind.allCases[j]) IoU \(iou)")
            }
        }
    }

    @Test("objects in one scene do not overlap much")
    func noOverlap() {
        let plain = Dictionary(uniqueKeysWithValues: Background.allCases.map { ($0, SceneRenderer.render(Scene(background: $0, objects: []), size: 64)) })
        func mask(_ o: SceneObject, _ b: Background) -> Set<Int> {
            let image = SceneRenderer.render(Scene(background: b, objects: [o]), size: 64)
            guard let bg = plain[b] else { return [] }
            return Set(stride(from: 0, to: image.pixels.count, by: 3).filter { i in
                (0..<3).contains { abs(Int(image.pixels[i + $0]) - Int(bg.pixels[i + $0])) > 8 }
            })
        }
        var pairs = 0
        for index in 0..<60 {
            for scene in StoryPlanner.story(seed: 5, index: index).scenes {
                #expect(scene.isValid, "story \(index): \(scene.graphKey)")
                let masks = scene.objects.map { mask($0, scene.background) }
                for a in masks.indices {
                    for b in masks.indices where b > a {
                        let shared = masks[a].intersection(masks[b]).count
                        #expect(Double(shared) <= 0.05 * Double(min(masks[a].count, masks[b].count)),
                                "story \(index): \(scene.objects[a].kind) and \(scene.objects[b].kind) share \(shared) px")
                        pairs += 1
                    }
                }
            }
        }
        #expect(pairs > 100)
    }

    @Test("rendering 1,000 scenes at 64 px is fast")
    func speed() {
        let scenes = (0..<200).flatMap { StoryPlanner.story(seed: 3, index: $0).scenes }
        let start = Date()
        var checksum = 0
        for s in scenes { checksum &+= Int(SceneRenderer.render(s, size: 64).pixels[2080]) }
        let seconds = Date().timeIntervalSince(start)
        print("rendered \(scenes.count) scenes at 64x64 in \(String(format: "%.2f", seconds)) s (checksum \(checksum))")
        #expect(scenes.count == 1000)
        // Generous even for a debug build on a shared machine; release is several times faster.
        #expect(seconds < 60)
    }
}
