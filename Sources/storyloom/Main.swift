import Tensor

/// The process entry. OpenBLAS reads `OPENBLAS_CORETYPE` only when it loads, so its kernels are settled
/// first — by re-executing this process when OpenBLAS fell back to generic kernels — before any command runs.
@main
enum StoryloomMain {
    static func main() async {
        BLASKernels.chooseAtLaunch()
        await Storyloom.main()
    }
}
