/*
 * vm.h -- liblane internals shared by the loader (load.c), the interpreter
 * (vm.c) and the disassembler (disasm.c). Not installed, not part of the API.
 *
 * A lane_program is one allocation: this struct, the decoded arrays of its
 * bc_image, the per-route worst cases and a copy of the file bytes. The
 * image's strings point into that copy. Once bc_verify has accepted it the
 * program is never written again, so threads share it without locks.
 */
#ifndef LANE_VM_H
#define LANE_VM_H

#include <stdatomic.h>

#include "bc.h"
#include "lane.h"

/* One entry of the file's section table, as read. */
typedef struct vm_section {
  uint32_t id;            /* enum bc_section_id */
  uint32_t offset;        /* byte offset of the body */
  uint32_t size;          /* body size in bytes */
} vm_section;

struct lane_program {
  bc_image        im;           /* decoded, verified image */
  uint16_t        version;      /* header format version */
  uint32_t        nsec;         /* entries of sec */
  vm_section      sec[BC_SEC_MAX]; /* section table in file order */
  uint64_t        checksum;     /* header checksum */
  uint64_t       *route_steps;  /* nroutes worst-case instruction counts */
  uint64_t       *filter_steps; /* nfilters worst cases of one filter run */
  uint64_t        max_steps;    /* max of route_steps, 0 without routes */
  size_t          nbytes;       /* size of the file */
  unsigned char  *bytes;        /* copy of the file, owned */
};

/* Live counters of one model; all updates are relaxed atomics. */
typedef struct vm_mstat {
  atomic_uint_least64_t ok;     /* successful calls observed */
  atomic_uint_least64_t fail;   /* failed calls observed */
  atomic_uint_least32_t streak; /* consecutive failures, reset by success */
} vm_mstat;

#define VM_BREAKER_TRIP 5       /* consecutive failures that mark unhealthy */

struct lane_runtime {
  const lane_program *prog;     /* program this runtime serves, borrowed */
  uint32_t            nmodels;  /* entries of m */
  vm_mstat            m[];      /* per model, by model index */
};

/* Checks the header and section table of a file and decodes it into a new
 * program (not yet verified beyond the file structure and the string
 * table). NULL with err filled on failure. */
lane_program *bc_decode(const void *bytes, size_t n, size_t max_bytes,
                        lane_error *err);
/* Verifies every table, index, region, operand and stack type of a decoded
 * program and computes its worst cases. Returns LANE_OK, or a status with
 * err filled (LANE_EFORMAT, LANE_ELIMIT, LANE_ENOMEM). */
int bc_verify(lane_program *p, uint64_t max_steps, lane_error *err);

/* Section name ("CODE") for an id, or NULL if the id is unknown. */
const char *bc_section_name(uint32_t id);
/* Record size of a section id, or 0 if unknown. */
uint32_t bc_section_record(uint32_t id);
/* Unit name as written in policies ("tokens"), or "?" if unknown. */
const char *bc_unit_name(uint32_t unit);
/* lane_type that a unit is stored as, or 0 if unknown. */
int bc_unit_type(uint32_t unit);

#endif /* LANE_VM_H */
