/// Signed distance functions for StoryWorld's shapes, and each object kind as a list of painted parts.
///
/// Distances are negative inside. Only `+ - * /`, `abs`, `min`/`max` and `sqrt` are used — all exact
/// in IEEE arithmetic — so renders are bit-identical on every platform (no `sin`/`cos`/`pow`).

/// A 2-D point or vector.
struct Vec2 {
    var x: Double
    var y: Double
    init(_ x: Double, _ y: Double) { self.x = x; self.y = y }
    static func - (a: Vec2, b: Vec2) -> Vec2 { Vec2(a.x - b.x, a.y - b.y) }
    static func + (a: Vec2, b: Vec2) -> Vec2 { Vec2(a.x + b.x, a.y + b.y) }
    static func * (a: Vec2, s: Double) -> Vec2 { Vec2(a.x * s, a.y * s) }
    func dot(_ b: Vec2) -> Double { x * b.x + y * b.y }
    var length: Double { (x * x + y * y).squareRoot() }
}

@inline(__always) func clamp(_ v: Double, _ lo: Double, _ hi: Double) -> Double { min(max(v, lo), hi) }

/// A shape as a signed distance function in the object's local frame (y up).
indirect enum Shape {
    case circle(Vec2, Double)
    case ellipse(Vec2, Double, Double)
    /// Centre, half extents, corner radius.
    case box(Vec2, Vec2, Double)
    case triangle(Vec2, Vec2, Vec2)
    /// A thick line segment: endpoints and half width.
    case segment(Vec2, Vec2, Double)
    /// Five-pointed star pointing up: centre, outer radius, inner-radius factor.
    case star(Vec2, Double, Double)
    case union([Shape])
    /// `first` minus `second`.
    case subtract(Shape, Shape)
    /// The shape shrunk by a distance (used to paint a fill inside its outline).
    case inset(Shape, Double)

    func distance(_ p: Vec2) -> Double {
        switch self {
        case .circle(let c, let r):
            return (p - c).length - r
        case .ellipse(let c, let rx, let ry):
            // Inigo Quilez's first-order ellipse approximation: exact on the boundary, enough for AA.
            let q = p - c
            let k0 = Vec2(q.x / rx, q.y / ry).length
            let k1 = Vec2(q.x / (rx * rx), q.y / (ry * ry)).length
            if k1 == 0 { return -min(rx, ry) }
            return k0 * (k0 - 1) / k1
        case .box(let c, let half, let r):
            let qx = abs(p.x - c.x) - half.x + r
            let qy = abs(p.y - c.y) - half.y + r
            let outside = Vec2(max(qx, 0), max(qy, 0)).length
            return outside + min(max(qx, qy), 0) - r
        case .triangle(let p0, let p1, let p2):
            return Shape.triangleDistance(p, p0, p1, p2)
        case .segment(let a, let b, let w):
            let pa = p - a, ba = b - a
            let h = clamp(pa.dot(ba) / ba.dot(ba), 0, 1)
            return (pa - ba * h).length - w
        case .star(let c, let r, let rf):
            return Shape.starDistance(p - c, r, rf)
        case .union(let parts):
            var d = Double.infinity
            for s in parts { d = min(d, s.distance(p)) }
            return d
        case .subtract(let a, let b):
            return max(a.distance(p), -b.distance(p))
        case .inset(let s, let amount):
            return s.distance(p) + amount
        }
    }

    /// Exact triangle distance (Inigo Quilez).
    static func triangleDistance(_ p: Vec2, _ p0: Vec2, _ p1: Vec2, _ p2: Vec2) -> Double {
        let e0 = p1 - p0, e1 = p2 - p1, e2 = p0 - p2
        let v0 = p - p0, v1 = p - p1, v2 = p - p2
        let pq0 = v0 - e0 * clamp(v0.dot(e0) / e0.dot(e0), 0, 1)
        let pq1 = v1 - e1 * clamp(v1.dot(e1) / e1.dot(e1), 0, 1)
        let pq2 = v2 - e2 * clamp(v2.dot(e2) / e2.dot(e2), 0, 1)
        let s: Double = (e0.x * e2.y - e0.y * e2.x) < 0 ? -1 : 1
        let dx = min(pq0.dot(pq0), pq1.dot(pq1), pq2.dot(pq2))
        let dy = min(s * (v0.x * e0.y - v0.y * e0.x), s * (v1.x * e1.y - v1.y * e1.x), s * (v2.x * e2.y - v2.y * e2.x))
        return -dx.squareRoot() * (dy < 0 ? -1 : 1)
    }

    /// Exact five-pointed star distance (Inigo Quilez); cos/sin of 36° are constants.
    static func starDistance(_ point: Vec2, _ r: Double, _ rf: Double) -> Double {
        let k1 = Vec2(0.809016994375, -0.587785252292)
        let k2 = Vec2(-k1.x, k1.y)
        var p = Vec2(abs(point.x), point.y)
        p = p - k1 * (2 * max(k1.dot(p), 0))
        p = p - k2 * (2 * max(k2.dot(p), 0))
        p.x = abs(p.x)
        p.y -= r
        let ba = Vec2(-k1.y, k1.x) * rf - Vec2(0, 1)
        let h = clamp(p.dot(ba) / ba.dot(ba), 0, r)
        let side = p.y * ba.x - p.x * ba.y
        return (p - ba * h).length * (side < 0 ? -1 : 1)
    }
}

/// An RGB colour in 0–255 as doubles.
struct RGB {
    var r: Double, g: Double, b: Double
    init(_ r: Double, _ g: Double, _ b: Double) { self.r = r; self.g = g; self.b = b }
    init(_ c: ObjectColour) { let v = c.rgb; self.init(Double(v.r), Double(v.g), Double(v.b)) }
    func scaled(_ s: Double) -> RGB { RGB(r * s, g * s, b * s) }
    func mixed(with o: RGB, _ t: Double) -> RGB { RGB(r + (o.r - r) * t, g + (o.g - g) * t, b + (o.b - b) * t) }
}

/// One painted part of an object: a shape, its colour and opacity.
struct Paint {
    var shape: Shape
    var colour: RGB
    var opacity: Double = 1
}

/// Object geometry: each kind as paints in a local frame (origin at the object's anchor, y up,
/// 1 unit = `unit` of the image), plus the local bounding box.
enum ObjectShapes {
    /// Outline width in image units (≈0.8 px at 64×64): a darker rim keeps objects visible on any background.
    static let outline = 0.012
    static let groundBase = 0.88
    static let skyCentre = 0.21
    /// Local units per image unit for big objects; small objects are scaled by `ObjectSize.scale`.
    static let groundUnit = 0.42
    static let skyUnit = 0.15

    static let trunk = RGB(105, 68, 35)
    static let dark = RGB(45, 40, 40)
    static let glass = RGB(215, 235, 250)
    static let highlight = RGB(255, 255, 255)

    /// The anchor in image units and the local unit for an object.
    static func frame(_ o: SceneObject) -> (anchor: Vec2, unit: Double) {
        switch o.layer {
        case .ground: return (Vec2(o.position.centreX, groundBase), groundUnit * o.size.scale)
        case .sky: return (Vec2(o.position.centreX, skyCentre), skyUnit * o.size.scale)
        }
    }

    /// Local bounding box (minX, minY, maxX, maxY), y up.
    static func bounds(_ kind: ObjectKind) -> (Double, Double, Double, Double) {
        kind.layer == .ground ? (-0.41, -0.05, 0.41, 1.02) : (-1.05, -1.3, 1.05, 1.05)
    }

    /// The paints of an object, back to front. Body outlines are painted first, then the inset fill.
    static func paints(_ o: SceneObject, unit: Double) -> [Paint] {
        let fill = RGB(o.colour)
        let rim = o.colour == .white ? RGB(120, 120, 125) : fill.scaled(0.45)
        let w = outline / unit   // outline width in local units
        func body(_ s: Shape, _ c: RGB) -> [Paint] {
            [Paint(shape: s, colour: rim), Paint(shape: .inset(s, w), colour: c)]
        }
        switch o.kind {
        case .ball:
            return body(.circle(Vec2(0, 0.33), 0.33), fill)
                + [Paint(shape: .circle(Vec2(-0.11, 0.45), 0.09), colour: highlight, opacity: 0.75)]
        case .box:
            return body(.box(Vec2(0, 0.32), Vec2(0.33, 0.32), 0.03), fill)
                + [Paint(shape: .box(Vec2(0, 0.5), Vec2(0.33 - w, 0.035), 0), colour: rim, opacity: 0.8),
                   Paint(shape: .box(Vec2(0, 0.32), Vec2(0.035, 0.32 - w), 0), colour: rim, opacity: 0.5)]
        case .tree:
            let crown = Shape.union([.circle(Vec2(0, 0.74), 0.25), .circle(Vec2(-0.17, 0.56), 0.19),
                                     .circle(Vec2(0.17, 0.56), 0.19)])
            return body(.box(Vec2(0, 0.22), Vec2(0.075, 0.22), 0), trunk) + body(crown, fill)
        case .house:
            let roof = Shape.triangle(Vec2(-0.37, 0.54), Vec2(0.37, 0.54), Vec2(0, 0.95))
            return body(.box(Vec2(0, 0.28), Vec2(0.29, 0.28), 0), fill)
                + body(roof, fill.scaled(0.62))
                + [Paint(shape: .box(Vec2(-0.08, 0.15), Vec2(0.075, 0.15), 0.01), colour: dark),
                   Paint(shape: .box(Vec2(0.15, 0.33), Vec2(0.07, 0.07), 0), colour: glass)]
        case .cat:
            let cat = Shape.union([
                .ellipse(Vec2(0.03, 0.27), 0.26, 0.16),
                .circle(Vec2(-0.2, 0.48), 0.15),
                .triangle(Vec2(-0.35, 0.54), Vec2(-0.22, 0.61), Vec2(-0.33, 0.78)),
                .triangle(Vec2(-0.18, 0.61), Vec2(-0.05, 0.54), Vec2(-0.07, 0.78)),
                .segment(Vec2(0.26, 0.3), Vec2(0.36, 0.62), 0.04),
                .box(Vec2(-0.12, 0.08), Vec2(0.045, 0.09), 0.02),
                .box(Vec2(0.17, 0.08), Vec2(0.045, 0.09), 0.02),
            ])
            return body(cat, fill)
                + [Paint(shape: .circle(Vec2(-0.25, 0.5), 0.03), colour: dark),
                   Paint(shape: .circle(Vec2(-0.14, 0.5), 0.03), colour: dark)]
        case .car:
            let car = Shape.union([.box(Vec2(0, 0.24), Vec2(0.36, 0.12), 0.05),
                                   .box(Vec2(-0.02, 0.42), Vec2(0.2, 0.1), 0.05)])
            return body(car, fill)
                + [Paint(shape: .box(Vec2(-0.02, 0.42), Vec2(0.14, 0.055), 0.02), colour: glass),
                   Paint(shape: .circle(Vec2(-0.2, 0.11), 0.1), colour: dark),
                   Paint(shape: .circle(Vec2(0.2, 0.11), 0.1), colour: dark)]
        case .star:
            return body(.star(Vec2(0, 0), 1.0, 0.45), fill)
        case .balloon:
            return [Paint(shape: .segment(Vec2(0, -0.7), Vec2(0.06, -1.25), 0.025), colour: dark)]
                + body(.union([.ellipse(Vec2(0, 0.12), 0.62, 0.78),
                               .triangle(Vec2(-0.1, -0.72), Vec2(0.1, -0.72), Vec2(0, -0.6))]), fill)
                + [Paint(shape: .ellipse(Vec2(-0.24, 0.38), 0.12, 0.18), colour: highlight, opacity: 0.55)]
        }
    }
}
