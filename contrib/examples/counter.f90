! SPDX-License-Identifier: GPL-2.0-or-later
!
! counter.f90 - the smallest Fortran user of libsmig: sums 1..N one step per
! safe point; its state (step, sum) is captured and restored by libsmig.
! Outside "srun --mpi=pmix --migrate" every smig call is a no-op.
module counter_state
  use, intrinsic :: iso_c_binding
  use smig
  implicit none
  integer(c_int64_t), target :: state(2) = 0   ! step, sum
contains
  integer(c_int) function capture(w, arg) bind(C)
    type(c_ptr), value :: w, arg
    capture = smig_write(w, arg, int(c_sizeof(state), c_size_t))
  end function capture

  integer(c_int) function restore(data, len, arg) bind(C)
    type(c_ptr), value :: data
    integer(c_size_t), value :: len
    type(c_ptr), value :: arg
    integer(c_int64_t), pointer :: src(:), dst(:)

    restore = -1
    if (len /= c_sizeof(state)) return
    call c_f_pointer(data, src, [2])
    call c_f_pointer(arg, dst, [2])
    dst = src
    restore = 0
  end function restore
end module counter_state

program counter
  use counter_state
  implicit none
  integer(c_int) :: rc
  integer(c_int64_t), parameter :: n = 1000

  rc = smig_init()
  if (rc /= SMIG_OK) stop 1
  rc = smig_register("counter", capture, restore, c_loc(state))
  if (rc < 0) then
     print '(a,a)', 'counter: smig_register: ', smig_strerror(rc)
     stop 1
  end if
  if (rc == SMIG_RESTORED) print '(a,i0)', 'counter: restored at step ', state(1)
  do while (state(1) < n)
     state(1) = state(1) + 1
     state(2) = state(2) + state(1)
     if (smig_safepoint() == SMIG_STOP) then
        print '(a,i0)', 'counter: stopping for migration at step ', state(1)
        rc = smig_finalize()
        stop
     end if
  end do
  print '(a,i0)', 'counter: done sum=', state(2)
  rc = smig_finalize()
end program counter
