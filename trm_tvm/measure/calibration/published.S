@ Instruction sequences whose Cortex-M3/M4 cycle counts are published, for checking the timing model
@ (trm_tvm/measure/calibration/__init__.py holds the published figures and their sources).
@ Each case is a sized symbol of its own, so the plugin attributes exactly its instructions to it;
@ execution falls through from one case into the glue code that follows it.
        .syntax unified
        .cpu cortex-m4
        .thumb

        .section .vectors, "a"
        .word   0x20010000
        .word   reset

        .macro case name
        .thumb_func
        .type   \name, %function
\name:
        .endm
        .macro endcase name
        .size   \name, .-\name
        .endm

        .text
        .thumb_func
        .type   reset, %function
reset:
        ldr     r1, =0x20000100
        ldr     r2, =0x20000104
        ldr     r3, =0x20000108
        movs    r5, #0
        str     r5, [r1]
        str     r5, [r2]
        str     r5, [r3]
        .size   reset, .-reset

case    arm_ldr_ldr                     @ "LDR R0,[R1]; LDR R1,[R2]: normally three cycles total"
        ldr     r0, [r1]
        ldr     r1, [r2]
endcase arm_ldr_ldr
        ldr     r1, =0x20000100
        nop

case    arm_ldr_ldr_ldr                 @ "LDR R0,[R1,R5]; LDR R1,[R2]; LDR R2,[R3,#4]: normally four cycles total"
        ldr     r0, [r1, r5]
        ldr     r1, [r2]
        ldr     r2, [r3, #4]
endcase arm_ldr_ldr_ldr
        ldr     r1, =0x20000100
        ldr     r2, =0x20000104
        nop

case    arm_ldr_str                     @ "LDR R0,[R1,R2]; STR R0,[R3,#20]: normally three cycles total"
        ldr     r0, [r1, r5]
        str     r0, [r3, #20]
endcase arm_ldr_str
        nop
        adr     r0, 1f + 1              @ a code address (Thumb bit set) for LDR PC
        str     r0, [r1]
        nop

case    arm_ldr_pc                      @ "LDR PC,[any] ... at least five cycles"
        ldr     pc, [r1]
endcase arm_ldr_pc
        .balign 4
1:      nop
        movs    r0, #0
        nop                             @ keep the index out of the ALU-to-address stall

case    arm_tbb                         @ "TBB and TBH ... at least six cycles"
        tbb     [pc, r0]
endcase arm_tbb
2:      .byte   (3f - 2b) / 2, 0
3:      nop
        ldr     r1, =0x20000100

case    arm_alu_ldr                     @ "a load ... address dependent on the result of a preceding data processing
        adds    r1, #0                  @  operation stalls the pipeline for an additional cycle": 1 + 2 + 1
        ldr     r0, [r1]
endcase arm_alu_ldr
        nop
        movs    r0, #100

case    loop_subs_bhi                   @ subs/bhi delay loop, measured 4 cycles per iteration on a Cortex-M3
4:      subs    r0, #1
        bhi     4b
endcase loop_subs_bhi
        nop
        movs    r0, #0x18               @ semihosting SYS_EXIT, ADP_Stopped_ApplicationExit
        ldr     r1, =0x20026
        bkpt    0xab
