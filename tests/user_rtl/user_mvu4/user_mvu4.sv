// An example of user RTL outside Faultline's tree (tests/user_rtl is copied elsewhere and passed
// as FAULTLINE_USER_RTL): a 4-output × 4-input exact int8 matrix-vector unit written differently
// from rtl/mac_array — one stage, with a one-entry output register that holds its result under
// back-pressure — following the contract of rtl/README.md.
module user_mvu4 (
    input  logic         clk,
    input  logic         rst_n,
    input  logic         in_valid,
    output logic         in_ready,
    input  logic         in_weight,
    input  logic [31:0]  in_data,
    output logic         out_valid,
    input  logic         out_ready,
    output logic [127:0] out_data,
    input  logic         cfg_valid,
    input  logic [7:0]   cfg_addr,
    input  logic [31:0]  cfg_data
);
  logic [31:0] w [4];  // weight rows, lane j in bits [8j+7:8j]
  logic [1:0]  row;

  function automatic logic signed [31:0] dot(input logic [31:0] a, input logic [31:0] b);
    logic signed [31:0] s;
    s = 0;
    for (int j = 0; j < 4; j++) s = s + 32'($signed(a[8*j +: 8])) * 32'($signed(b[8*j +: 8]));
    return s;
  endfunction

  assign in_ready = !out_valid || out_ready;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      row <= 2'd0;
      out_valid <= 1'b0;
      for (int i = 0; i < 4; i++) w[i] <= '0;
    end else begin
      if (out_valid && out_ready) out_valid <= 1'b0;
      if (in_valid && in_ready) begin
        if (in_weight) begin
          w[row] <= in_data;
          row <= row + 2'd1;
        end else begin
          for (int i = 0; i < 4; i++) out_data[32*i +: 32] <= dot(w[i], in_data);
          out_valid <= 1'b1;
        end
      end
    end
  end

  wire unused = cfg_valid ^ (|cfg_addr) ^ (|cfg_data);
endmodule
