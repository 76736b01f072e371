import Imaging

/// Reads an image (e.g. a generated one) against a StoryWorld scene graph and says, per attribute,
/// whether the pixels show what the graph says: background, and per object its colour, size,
/// position and kind, and whether it is there at all.
///
/// Method: analysis by synthesis. For each attribute, every value it could take is rendered with the
/// rest of the scene graph held at its true values, and the value whose render is nearest to the
/// image within the region that attribute affects wins; the attribute is a hit when that value is the
/// graph's. On ground-truth renders the true value reproduces the image exactly, so every attribute
/// is a hit; a render with one attribute changed moves exactly that attribute's nearest value.
///
/// - Background and colour compare RGB (background outside the objects' boxes, colour inside the
///   object's box).
/// - Size, position and kind compare *difference maps*: per pixel, how far the image is from the
///   scene rendered without the object (clipped), against the same map of each candidate render. The
///   map is the object's silhouette with its strength, so a blob of the wrong colour still matches the
///   right shape, size and place — these three are judged on shape, not colour.
/// - Presence: inside the object's rendered silhouette at its true slot, the image departs from the
///   scene-without-it by more than half the render's own departure, beyond how much it departs around
///   the silhouette in the same box (so noise, which departs everywhere, is not an object).
///
/// Images of any square size are read at their own resolution (renders are made at that size).
public struct AttributeChecker: Sendable {
    /// Difference maps are clipped here (RGB distance / 255): beyond it a pixel is simply "changed".
    public var clip: Double = 0.35

    public init() {}

    /// Per-object findings.
    public struct ObjectResult: Sendable, Equatable {
        public var id: Int
        public var colour: ObjectColour
        public var size: ObjectSize
        public var position: Position
        public var kind: ObjectKind
        public var present: Bool
    }

    /// What the image shows according to the checker, next to the graph it was read against.
    public struct Result: Sendable {
        public var scene: Scene
        public var background: Background
        public var objects: [ObjectResult]

        public var backgroundHit: Bool { background == scene.background }
        /// Fraction of the graph's objects whose attribute was read as the graph says (0 or 1 for one object).
        public func fraction(_ hit: (SceneObject, ObjectResult) -> Bool) -> Double {
            guard !objects.isEmpty else { return 1 }
            return Double(zip(scene.objects, objects).filter { hit($0, $1) }.count) / Double(objects.count)
        }
        public var colourHits: Double { fraction { $0.colour == $1.colour } }
        public var sizeHits: Double { fraction { $0.size == $1.size } }
        public var positionHits: Double { fraction { $0.position == $1.position } }
        public var kindHits: Double { fraction { $0.kind == $1.kind } }
        public var presentHits: Double { fraction { $1.present } }
        /// 1 when every object of the graph was found at its slot.
        public var allPresent: Bool { objects.allSatisfy(\.present) }
    }

    /// Reads `image` against `scene`. Throws when the image is not square.
    public func check(_ image: Image, against scene: Scene) throws -> Result {
        guard image.width == image.height, image.width >= 8 else {
            throw WorldError("expected a square image of at least 8×8 pixels, got \(image.width)×\(image.height)")
        }
        let n = image.width
        let img = Pixels(image.converted(toChannels: 3))
        let render = { (s: Scene) in Pixels(SceneRenderer.render(s, size: n)) }

        // Background: RGB outside every object's box.
        var outside = Mask(size: n, fill: true)
        for o in scene.objects { outside.clear(Self.box(o, n)) }
        if outside.count < n * n / 10 { outside = Mask(size: n, fill: true) }
        let outsidePixels = outside.indices
        let backgroundScores = Background.allCases.map { b in img.rgbDistance(render(Scene(background: b, objects: scene.objects)), outsidePixels) }
        let background = Background.allCases[backgroundScores.indices.min { backgroundScores[$0] < backgroundScores[$1] } ?? 0]

        var results: [ObjectResult] = []
        for (index, o) in scene.objects.enumerated() {
            var others = scene.objects
            others.remove(at: index)
            let base = render(Scene(background: scene.background, objects: others))
            let imageMap = img.differenceMap(from: base, clip: clip)
            func with(_ change: (inout SceneObject) -> Void) -> SceneObject { var c = o; change(&c); return c }
            func rendered(_ c: SceneObject) -> Pixels {
                var objects = scene.objects
                objects[index] = c
                return render(Scene(background: scene.background, objects: objects))
            }
            /// The candidate whose difference map is nearest to the image's within the union of their boxes.
            func nearestByShape<T>(_ values: [T], _ make: (T) -> SceneObject) -> T {
                let candidates = values.map(make)
                var region = Mask(size: n, fill: false)
                for c in candidates { region.set(Self.box(c, n)) }
                let pixels = region.indices
                let scores = candidates.map { imageMap.distance(rendered($0), base: base, clip: clip, pixels) }
                return values[scores.indices.min { scores[$0] < scores[$1] } ?? 0]
            }
            var own = Mask(size: n, fill: false)
            own.set(Self.box(o, n))
            let ownPixels = own.indices
            let colourScores = ObjectColour.allCases.map { c in img.rgbDistance(rendered(with { $0.colour = c }), ownPixels) }
            let colour = ObjectColour.allCases[colourScores.indices.min { colourScores[$0] < colourScores[$1] } ?? 0]
            let size = nearestByShape(ObjectSize.allCases) { s in with { $0.size = s } }
            let position = nearestByShape(Position.allCases) { p in with { $0.position = p } }
            let kind = nearestByShape(ObjectKind.allCases) { k in with { $0.kind = k } }
            // Present when the image departs from the backdrop inside the object's silhouette clearly
            // more than around it in the same box (noise or an empty backdrop departs equally or not at all).
            let template = rendered(o)
            var inside: [Int] = [], around: [Int] = [], strength = 0.0
            for p in ownPixels {
                let d = template.difference(p, from: base, clip: clip)
                if d > clip / 2 { inside.append(p); strength += d } else if d < 0.02 { around.append(p) }
            }
            func mean(_ ps: [Int]) -> Double { ps.isEmpty ? 0 : ps.reduce(0) { $0 + imageMap.values[$1] } / Double(ps.count) }
            let present = !inside.isEmpty && mean(inside) - mean(around) > 0.5 * strength / Double(inside.count)
            results.append(ObjectResult(id: o.id, colour: colour, size: size, position: position, kind: kind, present: present))
        }
        return Result(scene: scene, background: background, objects: results)
    }

    /// An object's box in pixels (x0, y0, x1, y1), inclusive, clamped to the image.
    static func box(_ o: SceneObject, _ n: Int) -> (Int, Int, Int, Int) {
        let b = SceneRenderer.bounds(o)
        let d = Double(n)
        func c(_ v: Double) -> Int { min(max(Int(v), 0), n - 1) }
        return (c(b.minX * d), c(b.minY * d), c((b.maxX * d).rounded(.up)), c((b.maxY * d).rounded(.up)))
    }
}

/// RGB pixels as doubles in 0–255, row-major.
struct Pixels {
    let size: Int
    let rgb: [Double]

    init(_ image: Image) {
        size = image.width
        rgb = image.pixels.map(Double.init)
    }

    /// Mean squared RGB difference over `pixels`.
    func rgbDistance(_ other: Pixels, _ pixels: [Int]) -> Double {
        var sum = 0.0
        for p in pixels {
            for ch in 0..<3 {
                let d = rgb[p * 3 + ch] - other.rgb[p * 3 + ch]
                sum += d * d
            }
        }
        return sum / Double(max(pixels.count, 1))
    }

    /// `differenceMap(from:clip:)` at one pixel.
    @inline(__always) func difference(_ p: Int, from base: Pixels, clip: Double) -> Double {
        var s = 0.0
        for ch in 0..<3 {
            let d = rgb[p * 3 + ch] - base.rgb[p * 3 + ch]
            s += d * d
        }
        return min(s.squareRoot() / 255, clip)
    }

    /// Per pixel: Euclidean RGB distance to `base` / 255, clipped at `clip`.
    func differenceMap(from base: Pixels, clip: Double) -> DifferenceMap {
        var m = DifferenceMap(size: size)
        for p in 0..<(size * size) { m.values[p] = difference(p, from: base, clip: clip) }
        return m
    }
}

/// How strongly each pixel differs from a reference render.
struct DifferenceMap {
    var values: [Double]
    init(size: Int) { values = [Double](repeating: 0, count: size * size) }

    /// Squared distance to another map over `pixels`.
    func distance(_ other: DifferenceMap, _ pixels: [Int]) -> Double {
        var sum = 0.0
        for p in pixels {
            let d = values[p] - other.values[p]
            sum += d * d
        }
        return sum
    }

    /// Squared distance to the difference map of `render` from `base`, computed over `pixels` only.
    func distance(_ render: Pixels, base: Pixels, clip: Double, _ pixels: [Int]) -> Double {
        var sum = 0.0
        for p in pixels {
            let d = values[p] - render.difference(p, from: base, clip: clip)
            sum += d * d
        }
        return sum
    }
}

/// A set of pixels.
struct Mask {
    let size: Int
    var bits: [Bool]

    init(size: Int, fill: Bool) {
        self.size = size
        bits = [Bool](repeating: fill, count: size * size)
    }

    mutating func set(_ box: (Int, Int, Int, Int), to value: Bool = true) {
        let (x0, y0, x1, y1) = box
        guard x0 <= x1, y0 <= y1 else { return }
        for y in y0...y1 { for x in x0...x1 { bits[y * size + x] = value } }
    }

    mutating func clear(_ box: (Int, Int, Int, Int)) { set(box, to: false) }

    var indices: [Int] { bits.indices.filter { bits[$0] } }
    var count: Int { bits.reduce(0) { $0 + ($1 ? 1 : 0) } }
}
