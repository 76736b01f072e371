import Tensor

/// The process entry. OpenBLAS reads `OPENBLAS_CORETYPE` only when it loads, so its kernels are settled
/// first — by re-executing this process when OpenBLAS fell back to generic kernels — before any command runs;
/// then the heap's policy (`HeapPolicy`), before the first large allocation.
@main
enum StoryloomMain {
    static func main() async {
        BLASKernels.chooseAtLaunch()
        HeapPolicy.chooseAtLaunch()
        await Storyloom.main()
    }
}
