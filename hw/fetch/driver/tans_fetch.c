/* Driver for the weight-fetch path's register block: see tans_fetch.h. The testbench
 * sim/tb/fetch.py drives the RTL with this same sequence of register accesses. */
#include "tans_fetch.h"

#define RD(r) (regs[(r) / 4u])
#define WR(r, v) (regs[(r) / 4u] = (v))
#define FIELD(v, f) (((v) & f##_MASK) >> f##_SHIFT)

int tans_fetch_init(volatile uint32_t *regs, int irq) {
  if (RD(TANS_REG_ID) != TANS_REG_ID_VALUE) return -1;
  WR(TANS_REG_CTRL, TANS_CTRL_CLEAR_MASK | (irq ? TANS_CTRL_IRQ_ENABLE_MASK : 0u));
  WR(TANS_REG_IRQ_STATUS, TANS_IRQ_STATUS_DONE_MASK | TANS_IRQ_STATUS_ERROR_MASK);
  return 0;
}

void tans_fetch_enqueue(volatile uint32_t *regs, const uint32_t *desc) {
  for (unsigned j = 0; j < TANS_DESC_WORDS; j++) WR(TANS_REG_DESC(j), desc[j]);
  WR(TANS_REG_PUSH, 1u);   /* the write's response waits while the queue is full */
}

void tans_fetch_enqueue_model(volatile uint32_t *regs, const uint32_t (*descs)[TANS_DESC_WORDS], unsigned n) {
  for (unsigned i = 0; i < n; i++) tans_fetch_enqueue(regs, descs[i]);
}

int tans_fetch_wait(volatile uint32_t *regs, unsigned long max_polls) {
  for (unsigned long i = 0; max_polls == 0 || i < max_polls; i++)
    if (!(RD(TANS_REG_STATUS) & TANS_STATUS_BUSY_MASK)) return 0;
  return -1;
}

int tans_fetch_result_read(volatile uint32_t *regs, tans_fetch_result *r) {
  uint32_t st = RD(TANS_REG_STATUS), err = RD(TANS_REG_ERROR), lay = RD(TANS_REG_LAYERS);
  r->error = FIELD(st, TANS_STATUS_ERROR);
  r->crc_error = FIELD(st, TANS_STATUS_CRC_ERROR);
  r->bus_error = FIELD(st, TANS_STATUS_BUS_ERROR);
  r->layer = FIELD(err, TANS_ERROR_LAYER);
  r->code = FIELD(err, TANS_ERROR_CODE);
  r->crc_layer = FIELD(err, TANS_ERROR_CRC_LAYER);
  r->done = FIELD(lay, TANS_LAYERS_DONE);
  r->failed = FIELD(lay, TANS_LAYERS_FAILED);
  return (int)(r->error | r->bus_error);
}

void tans_fetch_clear(volatile uint32_t *regs) {
  WR(TANS_REG_CTRL, TANS_CTRL_CLEAR_MASK | (RD(TANS_REG_CTRL) & TANS_CTRL_IRQ_ENABLE_MASK));
  WR(TANS_REG_IRQ_STATUS, TANS_IRQ_STATUS_DONE_MASK | TANS_IRQ_STATUS_ERROR_MASK);
}
