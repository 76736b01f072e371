#ifndef STORYLOOM_IMAGE_CODECS_H
#define STORYLOOM_IMAGE_CODECS_H
// Implemented in the Imaging helper's change.
#endif
