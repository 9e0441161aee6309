// shift_mvu: an example of user RTL (rtl/README.md, "Bringing your own RTL") -- a 4-output x
// 8-input int8 matrix-vector unit that works serially, one group of four lanes per cycle, skips
// groups whose lanes are all zero (latency 1 to 3 cycles per vector), keeps results in a 2-entry
// output FIFO, and post-processes each int32 sum with three registers:
//   shift    (address 0, 4 bits, reset 0): arithmetic right shift of the sum,
//   round    (address 1, 1 bit,  reset 1): round to nearest (add 2^(shift-1) first) when shift > 0,
//   saturate (address 2, 1 bit,  reset 0): clamp the shifted value to int16.
// A vector uses the register values in force when it is accepted (a write at the same rising
// edge as the vector's transfer is not yet in force). Its twin is twin.cpp.
//
// BUG selects a deliberately broken copy (tests only; 0 is the correct unit):
//   1: accepts a vector while the FIFO is full and drops the result it cannot store,
//   2: an all-zero vector skips the computation and returns the previous vector's result,
//   3: the write to `round` (address 1) also lands in `shift` (address decode ignores bit 0).
module shift_mvu #(
    parameter int BUG = 0
) (
    input  logic         clk,
    input  logic         rst_n,
    input  logic         in_valid,
    output logic         in_ready,
    input  logic         in_weight,
    input  logic [63:0]  in_data,
    output logic         out_valid,
    input  logic         out_ready,
    output logic [127:0] out_data,
    input  logic         cfg_valid,
    input  logic [7:0]   cfg_addr,
    input  logic [31:0]  cfg_data
);
  logic [63:0]  w [4];            // weight rows
  logic [1:0]   row;
  logic [3:0]   shift_reg;
  logic         round_reg, saturate_reg;

  // The vector being computed and the register values it was accepted with.
  logic         busy;
  logic [63:0]  x;
  logic         group;            // next group of four lanes (0: lanes 0-3, 1: lanes 4-7)
  logic signed [31:0] acc [4];
  logic [3:0]   shift_v;
  logic         round_v, saturate_v;

  // Output FIFO, 2 entries.
  logic [127:0] fifo [2];
  logic         head;
  logic [1:0]   count;

  function automatic logic signed [31:0] group_dot(input logic [63:0] wr, input logic [63:0] xv, input logic g);
    logic signed [31:0] s;
    s = 0;
    for (int j = 0; j < 4; j++) s = s + 32'($signed(wr[32*g + 8*j +: 8])) * 32'($signed(xv[32*g + 8*j +: 8]));
    return s;
  endfunction

  function automatic logic signed [31:0] post(input logic signed [31:0] a, input logic [3:0] sh, input logic rnd, input logic sat);
    logic signed [32:0] v;
    v = 33'(a);
    if (rnd && sh != 0) v = v + (33'sd1 <<< (sh - 1));
    v = v >>> sh;
    if (sat && v > 33'sd32767) v = 33'sd32767;
    if (sat && v < -33'sd32768) v = -33'sd32768;
    return v[31:0];
  endfunction

  wire pop = out_valid && out_ready;
  wire group_zero = (x[32*group +: 32] == 32'd0);
  wire last_group = (group == 1'b1);
  wire finishing = busy && last_group;
  // The correct unit only takes a vector when its result will have a place in the FIFO.
  assign in_ready = (BUG == 1) ? !busy : (!busy && (count < 2));
  assign out_valid = count != 0;
  assign out_data = fifo[head];
  wire take = in_valid && in_ready;

  logic [127:0] result;
  always_comb begin
    for (int i = 0; i < 4; i++) begin
      logic signed [31:0] sum;
      sum = acc[i] + (group_zero ? 32'sd0 : group_dot(w[i], x, group));
      result[32*i +: 32] = post(sum, shift_v, round_v, saturate_v);
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      row <= '0;
      busy <= 1'b0;
      head <= 1'b0;
      count <= '0;
      shift_reg <= 4'd0;
      round_reg <= 1'b1;
      saturate_reg <= 1'b0;
      for (int i = 0; i < 4; i++) begin
        w[i] <= '0;
        acc[i] <= '0;
      end
    end else begin
      if (cfg_valid) begin
        if (BUG == 3 ? cfg_addr[7:1] == 7'd0 : cfg_addr == 8'd0) shift_reg <= cfg_data[3:0];
        if (cfg_addr == 8'd1) round_reg <= cfg_data[0];
        if (cfg_addr == 8'd2) saturate_reg <= cfg_data[0];
      end
      // FIFO: pop at the head, push behind the entries that stay.
      begin
        logic [1:0] kept;
        logic push;
        push = finishing && (BUG != 1 || count - (pop ? 2'd1 : 2'd0) < 2);
        kept = count - (pop ? 2'd1 : 2'd0);
        if (pop) head <= !head;
        if (push) fifo[(pop ? !head : head) ^ kept[0]] <= result;
        count <= kept + (push ? 2'd1 : 2'd0);
      end
      if (busy) begin
        for (int i = 0; i < 4; i++) acc[i] <= acc[i] + (group_zero ? 32'sd0 : group_dot(w[i], x, group));
        if (last_group) busy <= 1'b0;
        else group <= 1'b1;
      end
      if (take && in_weight) begin
        w[row] <= in_data;
        row <= row + 2'd1;
      end
      if (take && !in_weight) begin
        x <= in_data;
        shift_v <= shift_reg;
        round_v <= round_reg;
        saturate_v <= saturate_reg;
        if (BUG == 2 && in_data == 64'd0) begin
          // Broken shortcut: the previous sums stay and are post-processed again.
          busy <= 1'b1;
          group <= 1'b1;
        end else begin
          // Zero-group skipping: a vector whose first group is zero starts at the second.
          busy <= 1'b1;
          group <= (in_data[31:0] == 32'd0) ? 1'b1 : 1'b0;
          for (int i = 0; i < 4; i++) acc[i] <= '0;
        end
      end
    end
  end
endmodule
