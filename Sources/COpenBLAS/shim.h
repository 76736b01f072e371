#include <cblas.h>
// openblas_set_num_threads / openblas_get_num_threads / openblas_get_config / openblas_get_corename
// come from openblas_config.h through cblas.h.
