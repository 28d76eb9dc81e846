/* Driver for the tans-weights weight-fetch path behind its AXI4-Lite register block
 * (hw/fetch/regs.py). Register names and descriptor layout come from the generated
 * tans_fetch_regs.h (python -m hw.fetch.regs -o tans_fetch_regs.h); the descriptors come from
 * python -m hw.fetch.image MODEL.tans --format h (tans_descriptors[][TANS_DESC_WORDS]). */
#ifndef TANS_FETCH_H
#define TANS_FETCH_H

#include <stdint.h>
#include "tans_fetch_regs.h"

typedef struct {
  uint32_t error;        /* 1: some tensor failed a check since the last clear */
  uint32_t layer;        /* the first failing tensor's layer tag */
  uint32_t code;         /* its code: TANS_ERR_* (TANS_ERR_CRC: its bytes were damaged) */
  uint32_t crc_error;    /* 1: some tensor failed its CRC-32 */
  uint32_t crc_layer;    /* the first such tensor's layer tag */
  uint32_t bus_error;    /* 1: a read returned RRESP != OKAY */
  uint32_t done, failed; /* tensors finished / failed since reset */
} tans_fetch_result;

/* Check the ID register, clear sticky errors and pending interrupts; irq: enable the line. */
int tans_fetch_init(volatile uint32_t *regs, int irq);
/* Queue one descriptor (TANS_DESC_WORDS words, least significant first); blocks while full. */
void tans_fetch_enqueue(volatile uint32_t *regs, const uint32_t *desc);
/* Queue n descriptors, e.g. a model's tans_descriptors table. */
void tans_fetch_enqueue_model(volatile uint32_t *regs, const uint32_t (*descs)[TANS_DESC_WORDS], unsigned n);
/* Spin until the path is idle (or max_polls polls; 0 = forever); 0 when idle, -1 on timeout. */
int tans_fetch_wait(volatile uint32_t *regs, unsigned long max_polls);
/* Read the error and counter registers; returns r->error | r->bus_error. */
int tans_fetch_result_read(volatile uint32_t *regs, tans_fetch_result *r);
/* Clear the sticky error registers and the interrupt causes. */
void tans_fetch_clear(volatile uint32_t *regs);

#endif /* TANS_FETCH_H */
