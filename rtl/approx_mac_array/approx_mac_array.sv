// approx_mac_array: the mac_array unit (rtl/mac_array) built from approximate multipliers —
// unreliable digital compute. Each int8 × int8 product is a truncated sign-magnitude array
// multiplier: the partial products |a|·b_k·2^k of the magnitudes are summed with every bit below
// column D dropped (D = the `drop_bits` register, address 0, reset value DROP), then the sign is
// applied. D = 0 is exact. Truncated array multipliers: e.g. Kidambi, El-Guibaly, Antoniou,
// "Area-efficient multipliers for digital signal processing applications", IEEE TCAS-II 1996.
// The behavioural twin is models/mvm_int8.h (approx_multiply); the two must agree bit for bit.
module approx_mac_array #(
    parameter int N = 16,
    parameter int M = 16,
    parameter int DROP = 6
) (
    input  logic              clk,
    input  logic              rst_n,
    input  logic              in_valid,
    output logic              in_ready,
    input  logic              in_weight,
    input  logic [8*M-1:0]    in_data,
    output logic              out_valid,
    input  logic              out_ready,
    output logic [32*N-1:0]   out_data,
    input  logic              cfg_valid,
    input  logic [7:0]        cfg_addr,
    input  logic [31:0]       cfg_data
);
  logic signed [7:0]  weights [N][M];
  logic signed [15:0] products [N][M];
  logic               products_valid;
  logic [$clog2(N)-1:0] row;  // next weight row to load
  logic [3:0]         drop_bits;

  function automatic logic signed [15:0] approx_multiply(input logic signed [7:0] a, input logic signed [7:0] b,
                                                         input logic [3:0] drop);
    logic [7:0]  ma, mb;
    logic [15:0] mask, acc;
    ma = a[7] ? 8'(-a) : 8'(a);   // |−128| = 128 fits 8 bits unsigned
    mb = b[7] ? 8'(-b) : 8'(b);
    mask = 16'hFFFF << drop;
    acc = '0;
    for (int k = 0; k < 8; k++)
      if (mb[k]) acc = acc + ((16'(ma) << k) & mask);
    return (a[7] ^ b[7]) ? -$signed(acc) : $signed(acc);
  endfunction

  // Products of the vector on the input, computed combinationally and registered in stage 1.
  logic signed [15:0] next_products [N][M];
  always_comb
    for (int i = 0; i < N; i++)
      for (int j = 0; j < M; j++) next_products[i][j] = approx_multiply(weights[i][j], in_data[8*j +: 8], drop_bits);

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
      drop_bits <= 4'(DROP);
      for (int i = 0; i < N; i++)
        for (int j = 0; j < M; j++) weights[i][j] <= '0;
    end else begin
      if (cfg_valid && cfg_addr == 8'd0) drop_bits <= cfg_data[3:0];
      if (take && in_weight) begin
        for (int j = 0; j < M; j++) weights[row][j] <= in_data[8*j +: 8];
        row <= (row == $clog2(N)'(N - 1)) ? '0 : row + 1'b1;
      end
      if (advance) begin
        products_valid <= take && !in_weight;
        if (take && !in_weight) products <= next_products;
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
  wire unused_cfg_high = |cfg_data[31:4];
endmodule
