// mac_array: an exact int8 × int8 → int32 matrix-vector unit of N outputs × M inputs (16 × 16:
// the shape of VTA's GEMM core), following the Faultline matrix-vector unit contract
// (rtl/README.md). Two pipeline stages — products, then the sum per output — and one input
// vector per cycle once the weights are loaded, as long as the output stream is not held back.
module mac_array #(
    parameter int N = 16,  // outputs (weight rows)
    parameter int M = 16   // inputs (int8 lanes of a transfer)
) (
    input  logic              clk,
    input  logic              rst_n,      // synchronous, active low
    // input stream: weight rows (in_weight = 1) and input vectors (in_weight = 0)
    input  logic              in_valid,
    output logic              in_ready,
    input  logic              in_weight,
    input  logic [8*M-1:0]    in_data,    // lane j = bits [8j+7:8j], two's complement
    // output stream: one result per input vector, in order
    output logic              out_valid,
    input  logic              out_ready,
    output logic [32*N-1:0]   out_data,   // lane i = bits [32i+31:32i] = Σ_j W[i][j]·x[j]
    // configuration registers (none used by this unit)
    input  logic              cfg_valid,
    input  logic [7:0]        cfg_addr,
    input  logic [31:0]       cfg_data
);
  logic signed [7:0]  weights [N][M];
  logic signed [15:0] products [N][M];
  logic               products_valid;
  logic [$clog2(N)-1:0] row;  // next weight row to load

  // The pipeline moves when the output register is free or being read this cycle.
  logic advance;
  assign advance  = !out_valid || out_ready;
  assign in_ready = advance;

  wire take = in_valid && in_ready;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      row <= '0;
      products_valid <= 1'b0;
      out_valid <= 1'b0;
      out_data <= '0;
      for (int i = 0; i < N; i++)
        for (int j = 0; j < M; j++) weights[i][j] <= '0;
    end else begin
      if (take && in_weight) begin
        for (int j = 0; j < M; j++) weights[row][j] <= in_data[8*j +: 8];
        row <= (row == $clog2(N)'(N - 1)) ? '0 : row + 1'b1;
      end
      if (advance) begin
        // Stage 1: products of the vector taken this cycle (weights as loaded before it).
        products_valid <= take && !in_weight;
        if (take && !in_weight)
          for (int i = 0; i < N; i++)
            for (int j = 0; j < M; j++) products[i][j] <= 16'(weights[i][j]) * 16'($signed(in_data[8*j +: 8]));
        // Stage 2: one sum per output.
        out_valid <= products_valid;
        if (products_valid)
          for (int i = 0; i < N; i++) begin
            logic signed [31:0] sum;
            sum = '0;
            for (int j = 0; j < M; j++) sum = sum + 32'(products[i][j]);
            out_data[32*i +: 32] <= sum;
          end
      end
    end
  end

  // cfg_* are part of the contract; this unit has no registers.
  wire unused_cfg = cfg_valid ^ (|cfg_addr) ^ (|cfg_data);
endmodule
