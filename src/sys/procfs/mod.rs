//! One pure parser per /proc file.
