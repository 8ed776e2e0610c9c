! SPDX-License-Identifier: GPL-2.0-or-later
!
! smig_mod.f90 - Fortran bindings of libsmig (smig.h), through bind(C).
!
!   use smig
!   rc = smig_init()
!   rc = smig_register("tag", capture, restore, c_loc(state))
!     (or smig_register_flags(..., SMIG_RESTORE_LATER), then smig_restore())
!   do ... ; if (smig_safepoint() == SMIG_STOP) exit ; end do
!   rc = smig_finalize()
!
! The callbacks are bind(C) module procedures with the interfaces
! smig_capture_fn and smig_restore_fn below; a capture writes with
! smig_write(w, c_loc(x), nbytes). Link with -lsmig (pkg-config
! slurm-migrate) and put smig.mod on the include path. See smig(3).
module smig
  use, intrinsic :: iso_c_binding
  implicit none

  integer(c_int), parameter :: SMIG_API_VERSION = 4
  integer(c_int), parameter :: SMIG_OK = 0, SMIG_RESTORED = 1, SMIG_STOP = 2
  integer(c_int), parameter :: SMIG_ERR_INVAL = -1, SMIG_ERR_STATE = -2, &
       SMIG_ERR_PMIX = -3, SMIG_ERR_IMAGE = -4, SMIG_ERR_IO = -5, &
       SMIG_ERR_APP = -6
  ! smig_capture_info_t%reason
  integer(c_int32_t), parameter :: SMIG_REASON_UNKNOWN = 0, &
       SMIG_REASON_DRAIN = 1, SMIG_REASON_BALANCE = 2, &
       SMIG_REASON_PERIODIC = 3, SMIG_REASON_REQUEST = 4, &
       SMIG_REASON_REQUEUE = 5
  ! flags of smig_register_flags()
  integer(c_int), parameter :: SMIG_RESTORE_LATER = 1

  ! What the capture callback may learn of its capture (smig_capture_info).
  type, bind(C) :: smig_capture_info_t
     integer(c_int64_t) :: generation  ! uint64_t in C
     integer(c_int64_t) :: safepoint   ! uint64_t in C
     integer(c_int32_t) :: reason      ! SMIG_REASON_*
     integer(c_int32_t) :: will_stop   ! 1: the ranks stop after it
  end type smig_capture_info_t

  abstract interface
     ! Serialise the state with smig_write(); return 0 on success.
     integer(c_int) function smig_capture_fn(w, arg) bind(C)
       import :: c_int, c_ptr
       type(c_ptr), value :: w, arg
     end function smig_capture_fn
     ! Rebuild the state from len bytes at data (borrowed); 0 on success.
     integer(c_int) function smig_restore_fn(data, len, arg) bind(C)
       import :: c_int, c_ptr, c_size_t
       type(c_ptr), value :: data
       integer(c_size_t), value :: len
       type(c_ptr), value :: arg
     end function smig_restore_fn
  end interface

  interface
     integer(c_int) function smig_init() bind(C, name="smig_init")
       import :: c_int
     end function smig_init
     integer(c_int) function smig_register_c(tag, capture, restore, arg) &
          bind(C, name="smig_register")
       import :: c_int, c_char, c_funptr, c_ptr
       character(kind=c_char), dimension(*), intent(in) :: tag
       type(c_funptr), value :: capture, restore
       type(c_ptr), value :: arg
     end function smig_register_c
     ! restore_rd: c_null_funptr (the streaming restore is C only)
     integer(c_int) function smig_register_flags_c(tag, capture, restore, &
          restore_rd, arg, flags) bind(C, name="smig_register_flags")
       import :: c_int, c_char, c_funptr, c_ptr
       character(kind=c_char), dimension(*), intent(in) :: tag
       type(c_funptr), value :: capture, restore, restore_rd
       type(c_ptr), value :: arg
       integer(c_int), value :: flags
     end function smig_register_flags_c
     ! Collective: every rank; SMIG_RESTORED, SMIG_OK or the same error
     integer(c_int) function smig_restore() bind(C, name="smig_restore")
       import :: c_int
     end function smig_restore
     ! Capture callback only: w is its first argument
     integer(c_int) function smig_capture_info(w, info) &
          bind(C, name="smig_capture_info")
       import :: c_int, c_ptr, smig_capture_info_t
       type(c_ptr), value :: w
       type(smig_capture_info_t), intent(out) :: info
     end function smig_capture_info
     integer(c_int) function smig_write(w, data, len) &
          bind(C, name="smig_write")
       import :: c_int, c_ptr, c_size_t
       type(c_ptr), value :: w, data
       integer(c_size_t), value :: len
     end function smig_write
     integer(c_int) function smig_safepoint() bind(C, name="smig_safepoint")
       import :: c_int
     end function smig_safepoint
     ! uint64_t in C: values above huge(0_c_int64_t) never occur
     integer(c_int64_t) function smig_generation() &
          bind(C, name="smig_generation")
       import :: c_int64_t
     end function smig_generation
     integer(c_int) function smig_finalize() bind(C, name="smig_finalize")
       import :: c_int
     end function smig_finalize
     integer(c_int) function smig_region_register_c(name, ptr, len) &
          bind(C, name="smig_region_register")
       import :: c_int, c_char, c_ptr, c_size_t
       character(kind=c_char), dimension(*), intent(in) :: name
       type(c_ptr), value :: ptr
       integer(c_size_t), value :: len
     end function smig_region_register_c
     integer(c_int) function smig_region_unregister_c(name) &
          bind(C, name="smig_region_unregister")
       import :: c_int, c_char
       character(kind=c_char), dimension(*), intent(in) :: name
     end function smig_region_unregister_c
     type(c_ptr) function smig_strerror_c(code) bind(C, name="smig_strerror")
       import :: c_ptr, c_int
       integer(c_int), value :: code
     end function smig_strerror_c
  end interface

contains

  ! smig_register - as in C; tag is a Fortran string (trailing blanks cut)
  integer(c_int) function smig_register(tag, capture, restore, arg)
    character(len=*), intent(in) :: tag
    procedure(smig_capture_fn) :: capture
    procedure(smig_restore_fn) :: restore
    type(c_ptr), intent(in) :: arg

    smig_register = smig_register_c(trim(tag) // c_null_char, &
         c_funloc(capture), c_funloc(restore), arg)
  end function smig_register

  ! smig_register_flags - smig_register() with flags (SMIG_RESTORE_LATER:
  ! the restore runs in smig_restore(), MPI allowed in the callback)
  integer(c_int) function smig_register_flags(tag, capture, restore, arg, &
       flags)
    character(len=*), intent(in) :: tag
    procedure(smig_capture_fn) :: capture
    procedure(smig_restore_fn) :: restore
    type(c_ptr), intent(in) :: arg
    integer(c_int), intent(in) :: flags

    smig_register_flags = smig_register_flags_c(trim(tag) // c_null_char, &
         c_funloc(capture), c_funloc(restore), c_null_funptr, arg, flags)
  end function smig_register_flags

  ! smig_region_register - a memory region (smig(3), "Memory regions"):
  ! ptr = c_loc(array) of a target array, len its size in bytes; name a
  ! Fortran string (trailing blanks cut). Before smig_register().
  integer(c_int) function smig_region_register(name, ptr, len)
    character(len=*), intent(in) :: name
    type(c_ptr), intent(in) :: ptr
    integer(c_size_t), intent(in) :: len

    smig_region_register = smig_region_register_c(trim(name) // c_null_char, &
         ptr, len)
  end function smig_region_register

  integer(c_int) function smig_region_unregister(name)
    character(len=*), intent(in) :: name

    smig_region_unregister = smig_region_unregister_c(trim(name) // &
         c_null_char)
  end function smig_region_unregister

  ! smig_strerror - the text of a result code, as a Fortran string
  function smig_strerror(code) result(text)
    integer(c_int), intent(in) :: code
    character(len=:), allocatable :: text
    character(kind=c_char), pointer :: p(:)
    integer :: n

    call c_f_pointer(smig_strerror_c(code), p, [256])
    n = 0
    do while (n < 256)
       if (p(n + 1) == c_null_char) exit
       n = n + 1
    end do
    allocate(character(len=n) :: text)
    text = transfer(p(1:n), text)
  end function smig_strerror
end module smig
