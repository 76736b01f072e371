/* Debian's libxml2 is built with ICU, so its encoding.h includes the system <unicode/ucnv.h>.
 * Foundation on Linux ships its own ICU headers (_FoundationICU) with a different UErrorCode, and a
 * Swift file importing both fails to compile. Nothing here uses the ICU converter fields, so hide them. */
#include <libxml/xmlversion.h>
#undef LIBXML_ICU_ENABLED
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
