/* Implemented by the common-modules work; see support.h. */
