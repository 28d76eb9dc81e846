// Behavioural simulation model of the Lattice ECP5 DP16KD block RAM (yosys ships it only as a
// blackbox), covering what hw/ecp5_ram.py uses and not more:
//   - both ports, DATA_WIDTH_A/B in {4, 9, 18} (x1, x2, x36 are not modelled),
//   - REGMODE_A/B "NOREG" | "OUTREG", WRITEMODE "NORMAL" | "WRITETHROUGH" | "READBEFOREWRITE",
//   - CE (array access) and OCE (output register) enables, WE, CS decode, RESETMODE "SYNC" only,
//   - no INITVAL (the array starts as x), no GSR, no clock inversion (CLKAMUX/CLKBMUX).
// Pin mapping (Lattice TN1264, ECP5 Memory Usage Guide; the same as yosys'
// techlibs/lattice/brams_16kd.txt, a 14-bit bit address with "byte 9"):
//   x18: 1K x 18, address AD[13:4], AD[1:0] = write enables of DI[8:0] / DI[17:9], data DI/DO[17:0]
//   x9:  2K x 9,  address AD[13:3], data DI/DO[8:0]
//   x4:  4K x 4,  address AD[13:2], data DI/DO[3:0]
// Address pins below the word address are ignored (x9, x4) and unused DO pins read as x, so a
// wrapper that wires the wrong pins fails its test. The array is modelled as 1024 rows of 18 bits
// (the row is AD[13:4] in every mode); a x9 word is row bits [8:0] or [17:9] (AD[3]), a x4 word is
// one of the nibbles [3:0], [7:4], [12:9], [16:13] (AD[3:2]). Simultaneous writes of the same row
// from both ports are not modelled.
module DP16KD (
  input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
  input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
  input CEA, OCEA, CLKA, WEA, RSTA,
  input CSA2, CSA1, CSA0,
  output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,

  input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
  input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
  input CEB, OCEB, CLKB, WEB, RSTB,
  input CSB2, CSB1, CSB0,
  output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
  parameter DATA_WIDTH_A = 18;
  parameter DATA_WIDTH_B = 18;
  parameter REGMODE_A = "NOREG";
  parameter REGMODE_B = "NOREG";
  parameter RESETMODE = "SYNC";
  parameter ASYNC_RESET_RELEASE = "SYNC";
  parameter CSDECODE_A = "0b000";
  parameter CSDECODE_B = "0b000";
  parameter WRITEMODE_A = "NORMAL";
  parameter WRITEMODE_B = "NORMAL";
  parameter CLKAMUX = "CLKA";
  parameter CLKBMUX = "CLKB";
  parameter GSR = "ENABLED";

  reg [17:0] mem [0:1023];

  wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
  wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
  wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
  wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
  // CSDECODE is a string "0bXYZ": the low bit of each character's code is the bit value
  wire csa_on = {CSA2, CSA1, CSA0} === {CSDECODE_A[16], CSDECODE_A[8], CSDECODE_A[0]};
  wire csb_on = {CSB2, CSB1, CSB0} === {CSDECODE_B[16], CSDECODE_B[8], CSDECODE_B[0]};

  // the bit offset of a word inside its 18-bit row
  function integer offset(input integer dw, input [13:0] ad);
    case (dw)
      18: offset = 0;
      9: offset = ad[3] ? 9 : 0;
      default: case (ad[3:2])   // 4
        2'd0: offset = 0;
        2'd1: offset = 4;
        2'd2: offset = 9;
        default: offset = 13;
      endcase
    endcase
  endfunction

  // which bits of the row a write changes: the word's bits, in x18 mode gated by AD[1:0]
  function [17:0] write_mask(input integer dw, input [13:0] ad);
    case (dw)
      18: write_mask = {{9{ad[1]}}, {9{ad[0]}}};
      9: write_mask = 18'h001ff << offset(dw, ad);
      default: write_mask = 18'h0000f << offset(dw, ad);
    endcase
  endfunction

  // the word at `ad` of a row, on DO[dw-1:0], the other DO pins x
  function [17:0] read_word(input integer dw, input [13:0] ad, input [17:0] row);
    reg [17:0] w;
    begin
      w = row >> offset(dw, ad);
      case (dw)
        18: read_word = w;
        9: read_word = {9'bx, w[8:0]};
        default: read_word = {14'bx, w[3:0]};
      endcase
    end
  endfunction

  initial begin
    if (!(DATA_WIDTH_A == 18 || DATA_WIDTH_A == 9 || DATA_WIDTH_A == 4) ||
        !(DATA_WIDTH_B == 18 || DATA_WIDTH_B == 9 || DATA_WIDTH_B == 4)) begin
      $display("DP16KD model: DATA_WIDTH %0d/%0d not modelled", DATA_WIDTH_A, DATA_WIDTH_B);
      $finish;
    end
    if (!(REGMODE_A == "NOREG" || REGMODE_A == "OUTREG") || !(REGMODE_B == "NOREG" || REGMODE_B == "OUTREG")) begin
      $display("DP16KD model: bad REGMODE %0s/%0s", REGMODE_A, REGMODE_B);
      $finish;
    end
    if (!(WRITEMODE_A == "NORMAL" || WRITEMODE_A == "WRITETHROUGH" || WRITEMODE_A == "READBEFOREWRITE") ||
        !(WRITEMODE_B == "NORMAL" || WRITEMODE_B == "WRITETHROUGH" || WRITEMODE_B == "READBEFOREWRITE")) begin
      $display("DP16KD model: bad WRITEMODE %0s/%0s", WRITEMODE_A, WRITEMODE_B);
      $finish;
    end
    if (RESETMODE != "SYNC" || CLKAMUX != "CLKA" || CLKBMUX != "CLKB") begin
      $display("DP16KD model: only RESETMODE SYNC and non-inverted clocks are modelled");
      $finish;
    end
  end

  // port A: array access (CE) into the output latch, then the optional output register (OCE)
  reg [17:0] lat_a = 18'bx, reg_a = 18'bx;
  reg [17:0] old_a, new_a, mask_a;
  always @(posedge CLKA) if (csa_on) begin
    old_a = mem[ada[13:4]];
    if (RSTA) lat_a <= 18'd0;
    else if (CEA) begin
      if (WEA) begin
        mask_a = write_mask(DATA_WIDTH_A, ada);
        new_a = (old_a & ~mask_a) | ((dia << offset(DATA_WIDTH_A, ada)) & mask_a);
        mem[ada[13:4]] <= new_a;
        if (WRITEMODE_A == "WRITETHROUGH") lat_a <= read_word(DATA_WIDTH_A, ada, new_a);
        else if (WRITEMODE_A == "READBEFOREWRITE") lat_a <= read_word(DATA_WIDTH_A, ada, old_a);
      end else
        lat_a <= read_word(DATA_WIDTH_A, ada, old_a);
    end
    if (RSTA) reg_a <= 18'd0;
    else if (OCEA) reg_a <= lat_a;
  end
  wire [17:0] doa = REGMODE_A == "OUTREG" ? reg_a : lat_a;

  // port B: the same
  reg [17:0] lat_b = 18'bx, reg_b = 18'bx;
  reg [17:0] old_b, new_b, mask_b;
  always @(posedge CLKB) if (csb_on) begin
    old_b = mem[adb[13:4]];
    if (RSTB) lat_b <= 18'd0;
    else if (CEB) begin
      if (WEB) begin
        mask_b = write_mask(DATA_WIDTH_B, adb);
        new_b = (old_b & ~mask_b) | ((dib << offset(DATA_WIDTH_B, adb)) & mask_b);
        mem[adb[13:4]] <= new_b;
        if (WRITEMODE_B == "WRITETHROUGH") lat_b <= read_word(DATA_WIDTH_B, adb, new_b);
        else if (WRITEMODE_B == "READBEFOREWRITE") lat_b <= read_word(DATA_WIDTH_B, adb, old_b);
      end else
        lat_b <= read_word(DATA_WIDTH_B, adb, old_b);
    end
    if (RSTB) reg_b <= 18'd0;
    else if (OCEB) reg_b <= lat_b;
  end
  wire [17:0] dob = REGMODE_B == "OUTREG" ? reg_b : lat_b;

  assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = doa;
  assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob;
endmodule
