pub mod jose;
