#ifndef CTFLOPT_VERSION_H
#define CTFLOPT_VERSION_H
#define CTFLOPT_NAME "mod_ctflopt"
#define CTFLOPT_VERSION "0.1.0"
#endif
